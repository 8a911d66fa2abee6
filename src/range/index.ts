/**
 * Range requests: parsing and resolving `Range`, `Content-Range` and `If-Range`, planning
 * coalesced upstream fetches, and writing `multipart/byteranges` bodies.
 *
 * @module
 */
export * from './parse.js';
export * from './multipart.js';
export * from './select.js';
export * from './upstream-parts.js';
