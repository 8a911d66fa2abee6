/** What a warm run reports as it goes (reporters render these; `--json` prints them as they are). */
import type { WarmErrorKind } from './errors.js';

/** A failure as reported. */
export interface ErrorInfo {
  kind: WarmErrorKind;
  message: string;
}

/** How one client's Accept set resolved a tag through the mirror. */
export interface TagAnswerInfo {
  client: string;
  digest?: string;
  mediaType?: string;
  error?: ErrorInfo;
}

/** The outcome of one image. */
export interface ImageResult {
  /** The argument as given. */
  input: string;
  /** Canonical reference (`docker.io/library/nginx:latest`), when it parsed. */
  ref: string;
  ok: boolean;
  /** Digest of the top manifest (index or image). */
  digest?: string;
  mediaType?: string;
  /** Platforms of the image manifests walked (`linux/amd64`…), `unknown` for entries without one. */
  platforms: string[];
  /** Tag answers per client Accept set (empty for a digest reference). */
  tags: TagAnswerInfo[];
  manifests: number;
  /** Blobs of this image (config and layers, counted once). */
  blobs: number;
  bytes: number;
  /** Blobs skipped because they are foreign (`urls`): fetched by clients from elsewhere. */
  skippedForeign: number;
  ms: number;
  error?: ErrorInfo;
  /** Problems that did not fail the image (e.g. one client's Accept set answered 404). */
  warnings: string[];
}

/** Events, in the order they happen. Times are ms since the run started. */
export type WarmEvent =
  | { type: 'image-start'; t: number; input: string; ref: string }
  | { type: 'image-resolved'; t: number; ref: string; digest: string; mediaType: string; platforms: string[]; manifests: number; blobs: number; bytes: number }
  | { type: 'blob-done'; t: number; digest: string; size: number; ms: number; images: string[] }
  | { type: 'blob-failed'; t: number; digest: string; images: string[]; error: ErrorInfo }
  | { type: 'image-done'; t: number; result: ImageResult }
  | { type: 'image-failed'; t: number; result: ImageResult };

/** Receives events. */
export type WarmListener = (event: WarmEvent) => void;
