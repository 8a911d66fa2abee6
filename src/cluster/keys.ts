/** Redis key names of cluster mode: one prefix, so an operator can find (and flush) them all. */
const P = 'regmirror:cluster:';

/** A member's heartbeat key (value: its instance id; expires unless renewed). */
export const memberKey = (advertise: string) => `${P}member:${advertise}`;
/** The set of members holding a digest committed. */
export const holdersKey = (digest: string) => `${P}has:${digest}`;
/** The fill lease of a digest (value: `<advertise> <instance>`). */
export const leaseKey = (digest: string) => `${P}lease:${digest}`;
