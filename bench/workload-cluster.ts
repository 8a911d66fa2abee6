/**
 * Workload 7 (issue 11): cluster fan-out. Three regmirror processes in cluster mode (one real
 * redis-server, `--redis URL --advertise URL`, a shared cluster token), each with its own data dir,
 * all behind the same throttled upstream as workload 4; beside them, three distribution proxies
 * (independent: distribution has no cluster mode), and as a reference the run's standalone
 * regmirror taking all thirty clients alone (what one process and this machine do with thirty
 * hashing clients, so the cluster's figure can be read against it). Per system and round:
 *
 * - one client on the first member, on a fresh cold blob: the baseline;
 * - ten clients per member (thirty on the lone mirror), all started at once from one client
 *   process, on another fresh blob.
 *
 * Every body is sha256-verified by the client (so are the baseline's: the ratio compares like with
 * like). Upstream GETs/HEADs/bytes are counted at the relay after it settles (distribution keeps
 * fetching in the background after answering). For regmirror, where each member's fill read from
 * (`regmirror_cluster_fill_origins_total`: upstream for the lease holder, peer for the others).
 */
import { startRedis, type RedisServer } from '../test/harness/redis.js';
import type { BlobFile } from '../test/harness/oci.js';
import type { ClientOutcome } from './client.js';
import { digestOf, fanOut, httpGet } from './load.js';
import { formatOrigins } from './report.js';
import { startDistributionProxy, startRegmirror, type BenchServer, type ServerId } from './servers.js';
import { median, MiB } from './stats.js';
import type { ClusterRound, ClusterRow, ClusterSystem } from './types.js';
import { settleRelay, upstreamCount, type WorkloadContext } from './workloads.js';

/** The members of one system under test. */
interface System {
  system: ClusterSystem;
  id: Extract<ServerId, 'regmirror' | 'distribution-proxy'>;
  members: BenchServer[];
  /** Clients of the fan-out, spread over the members. */
  clients: number;
}

/** `regmirror cluster × 3` */
export function systemLabel(system: ClusterSystem, members: number): string {
  return system === 'regmirror-cluster' ? `regmirror cluster × ${members}` : system === 'regmirror-one' ? 'regmirror alone' : `distribution proxy × ${members}`;
}

const ORIGINS_METRIC = 'regmirror_cluster_fill_origins_total';

/** Sum over the members of `regmirror_cluster_fill_origins_total` by origin. */
async function fillOrigins(members: BenchServer[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const m of members) {
    const text = (await httpGet(`${m.url}/metrics`)).body.toString('utf8');
    for (const match of text.matchAll(new RegExp(`^${ORIGINS_METRIC}\\{origin="([^"]+)"\\} (\\S+)$`, 'gm'))) {
      const origin = match[1] ?? '?';
      out.set(origin, (out.get(origin) ?? 0) + Number(match[2]));
    }
  }
  return out;
}

function originsDiff(a: Map<string, number>, b: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of b) if (v - (a.get(k) ?? 0) > 0) out[k] = v - (a.get(k) ?? 0);
  return out;
}

/** Starts Redis, the regmirror cluster and the distribution proxies; stopped by the caller. */
async function startSystems(ctx: WorkloadContext, started: BenchServer[]): Promise<{ redis: RedisServer; systems: System[] }> {
  const n = ctx.params.clusterMirrors;
  const redis = await startRedis();
  const token = 'bench-cluster-token';
  const cluster: BenchServer[] = [];
  for (let i = 0; i < n; i++) {
    const s = await startRegmirror({ upstreamUrl: ctx.relay.url, mainJs: ctx.mainJs, name: `regmirror-cluster-${i}`, cluster: { redisUrl: redis.url, token } });
    cluster.push(s);
    started.push(s);
  }
  const dists: BenchServer[] = [];
  for (let i = 0; i < n; i++) {
    const s = await startDistributionProxy(ctx.relay.url, `distribution-proxy-${i}`);
    dists.push(s);
    started.push(s);
  }
  const clients = n * ctx.params.clusterClientsPerMirror;
  const alone = ctx.servers.find((s) => s.id === 'regmirror');
  const systems: System[] = [{ system: 'regmirror-cluster', id: 'regmirror', members: cluster, clients }];
  if (alone) systems.push({ system: 'regmirror-one', id: 'regmirror', members: [alone], clients });
  systems.push({ system: 'distribution-proxies', id: 'distribution-proxy', members: dists, clients });
  return { redis, systems };
}

/**
 * Warms every member up (connections to the upstream, Redis and the peers) with the warm 1 MiB blob,
 * fetched from the members one after the other, and checks its digest.
 */
async function warmUp(ctx: WorkloadContext, systems: System[]): Promise<void> {
  const path = `/v2/${ctx.warm.repo}/blobs/${ctx.warm.small.digest}`;
  for (const sys of systems) {
    for (const m of sys.members) {
      const res = await httpGet(m.url + path);
      if (res.status !== 200 || digestOf(res.body) !== ctx.warm.small.digest) {
        throw new Error(`w7: ${m.url} (${systemLabel(sys.system, sys.members.length)}): GET ${path} answered ${res.status} with ${res.body.length} bytes (${digestOf(res.body)})`);
      }
    }
  }
  await settleRelay(ctx.relay);
}

/** One round for one system: the single cold client, then every member's clients at once. */
async function round(ctx: WorkloadContext, sys: System, repo: string, one: BlobFile, many: BlobFile): Promise<ClusterRound> {
  const { relay } = ctx;
  const first = sys.members[0];
  if (!first) throw new Error('w7: no member');
  relay.reset();
  const single = await fanOut(ctx.clientJs, { url: `${first.url}/v2/${repo}/blobs/${one.digest}`, clients: 1, hash: true });
  await settleRelay(relay);
  const c1 = single.clients[0];
  const up1 = upstreamCount(relay, one.digest);

  const urls = sys.members.map((m) => `${m.url}/v2/${repo}/blobs/${many.digest}`);
  const before = sys.system === 'regmirror-cluster' ? await fillOrigins(sys.members) : undefined;
  relay.reset();
  const fan = await fanOut(ctx.clientJs, { url: urls[0] ?? '', urls, clients: sys.clients, hash: true });
  await settleRelay(relay);
  const upN = upstreamCount(relay, many.digest);
  const origins = before ? originsDiff(before, await fillOrigins(sys.members)) : undefined;
  const verified = (c: ClientOutcome, blob: BlobFile): boolean => c.status === 200 && c.bytes === blob.size && c.digest === blob.digest && c.error === undefined;
  const ok = fan.clients.filter((c) => verified(c, many)).length;
  const bad = fan.clients.filter((c) => !verified(c, many));
  if (bad.length > 0) {
    const b = bad[0];
    ctx.note(`${systemLabel(sys.system, sys.members.length)}: ${bad.length} of ${fan.clients.length} fan-out clients failed (first: ${b?.url ?? ''} status ${b?.status ?? 0}, ${b?.bytes ?? 0} bytes, ${b?.error ?? b?.digest ?? ''}).`);
  }
  return {
    single: { ...up1, wallS: single.wallMs / 1000, ok: c1 !== undefined && verified(c1, one) },
    fan: {
      ...upN,
      wallS: fan.wallMs / 1000,
      ok,
      perMemberWallS: urls.map((u) => Math.max(0, ...fan.clients.filter((c) => c.url === new URL(u).href).map((c) => c.endMs)) / 1000),
      clientCpuS: fan.cpuS,
      ...(origins ? { origins } : {}),
    },
  };
}

/** Workload 7: the regmirror cluster and the distribution proxies, `rounds` times each, on fresh blobs. */
export async function clusterFanOut(ctx: WorkloadContext, blobs: BlobFile[], repo: string): Promise<ClusterRow[]> {
  const { params } = ctx;
  const take = (): BlobFile => {
    const b = blobs.shift();
    if (!b) throw new Error('w7: ran out of cold blobs');
    return b;
  };
  const started: BenchServer[] = [];
  let redis: RedisServer | undefined;
  try {
    ctx.log(`w7: starting redis-server, ${params.clusterMirrors} regmirror members in cluster mode and ${params.clusterMirrors} distribution proxies`);
    const up = await startSystems(ctx, started);
    redis = up.redis;
    await warmUp(ctx, up.systems);
    const rounds = new Map<ClusterSystem, ClusterRound[]>();
    for (let r = 0; r < params.rounds; r++) {
      for (const sys of up.systems) {
        const res = await round(ctx, sys, repo, take(), take());
        ctx.log(
          `w7: round ${r + 1} ${systemLabel(sys.system, sys.members.length)}: 1 client ${res.single.wallS.toFixed(2)} s (${res.single.gets} GET up); ` +
            `${sys.clients} clients ${res.fan.wallS.toFixed(2)} s ` +
            `(${(res.fan.wallS / res.single.wallS).toFixed(2)}×; ${res.fan.gets} GET, ${res.fan.heads} HEAD, ${(res.fan.bytes / MiB).toFixed(0)} MiB up; ` +
            `slowest client per member ${res.fan.perMemberWallS.map((s) => s.toFixed(2)).join(' / ')} s; client CPU ${res.fan.clientCpuS.toFixed(2)} s; ` +
            `${res.fan.ok} ok${res.fan.origins ? `; fills from ${formatOrigins(res.fan.origins)}` : ''})`,
        );
        if (!res.single.ok) ctx.note(`${systemLabel(sys.system, sys.members.length)}: the single cold client of workload 7 failed in round ${r + 1}.`);
        rounds.set(sys.system, [...(rounds.get(sys.system) ?? []), res]);
      }
    }
    return up.systems.map((sys) => {
      const rs = rounds.get(sys.system) ?? [];
      return {
        system: sys.system,
        server: sys.id,
        members: sys.members.length,
        clients: sys.clients,
        clientsPerMember: sys.clients / sys.members.length,
        upstreamGets: median(rs.map((x) => x.fan.gets)),
        upstreamHeads: median(rs.map((x) => x.fan.heads)),
        upstreamBytes: median(rs.map((x) => x.fan.bytes)),
        oneClientS: median(rs.map((x) => x.single.wallS)),
        fanOutS: median(rs.map((x) => x.fan.wallS)),
        fanOutUpstreamS: median(rs.map((x) => x.fan.getS)),
        ratio: median(rs.map((x) => x.fan.wallS / x.single.wallS)),
        clientsOk: Math.min(...rs.map((x) => x.fan.ok)),
        clientCpuS: median(rs.map((x) => x.fan.clientCpuS)),
        rounds: rs,
      };
    });
  } finally {
    for (const s of started.reverse()) await s.stop();
    await redis?.stop();
  }
}
