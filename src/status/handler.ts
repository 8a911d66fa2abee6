/** Answers `GET /` (the status page) and `GET /status.json` (the same numbers for machines). */
import type { RequestContext } from '../http/context.js';
import { sendBuffer } from '../http/respond.js';
import type { StatusCollector } from './collector.js';
import { STATUS_PAGE, STATUS_PAGE_CSP } from './page.js';

/** Builds the pipeline's `status` route (see PipelineDeps.status). */
export function statusRoute(collector: StatusCollector): (ctx: RequestContext, what: 'page' | 'json') => Promise<void> {
  return async (ctx, what) => {
    if (what === 'page') {
      sendBuffer(ctx, 200, STATUS_PAGE, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'content-security-policy': STATUS_PAGE_CSP, 'x-content-type-options': 'nosniff' });
      return;
    }
    const report = await collector.collect();
    sendBuffer(ctx, 200, Buffer.from(`${JSON.stringify(report)}\n`), { 'content-type': 'application/json', 'cache-control': 'no-store' });
  };
}
