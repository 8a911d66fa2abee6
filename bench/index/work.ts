/** What one batch of reconciliation work holds (bench/index/fixture.ts adds it before every start). Own module: the report names it without loading lmdb. */
export const RECONCILE_WORK = { filesWithoutEntries: 1000, entriesWithoutFiles: 1000, tmpLeftovers: 100 } as const;
