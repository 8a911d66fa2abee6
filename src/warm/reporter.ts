/** What every progress display implements; the run feeds it events and, at the end, the summary. */
import type { WarmEvent } from './events.js';
import type { Summary } from './summary.js';

export interface Reporter {
  /** Called once before the first image starts. */
  start(): void;
  event(e: WarmEvent): void;
  /** Stops any timer and prints the summary. */
  finish(summary: Summary): void;
}

/** Where reporters write (stdout in the CLI; a buffer in tests). */
export interface Output {
  write(text: string): unknown;
}

/**
 * Removes control characters (ESC, CR, BEL…) from text that came from elsewhere (error messages from
 * the mirror, references from a LIST file): CI logs must not get them, and a terminal must not obey them.
 */
export function clean(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ');
}
