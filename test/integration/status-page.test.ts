/**
 * Issue 13 items 3–4: the status page in a real browser. Headless Chromium (Debian `chromium`, driven by
 * playwright-core) loads `GET /` from a running mirror with a real registry upstream; the numbers it shows
 * match `/status.json`; a fill in flight (slowed by a throttling relay) shows a growing progress bar and
 * its joiner; nothing secret appears; the page loads nothing from anywhere else; a screenshot is kept at
 * build/test-artifacts/status-page.png.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { cleanupAll, registerCleanup, requireCommands, tmpDir } from '../harness/proc.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { makeImage, putBlob, pushImageHttp, randomBlobFile, type BlobFile, type GeneratedImage } from '../harness/oci.js';
import { startRelay, type Relay } from '../harness/relay.js';
import { startHubRateLimit, type HubRateLimit } from '../harness/hub-ratelimit.js';
import { startMirror, type TestMirror } from '../helpers/mirror.js';
import { http, httpDigest } from '../helpers/http.js';
import type { StatusReport } from '../../src/status/collector.js';

const MiB = 2 ** 20;
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const ARTIFACTS = join(ROOT, 'build', 'test-artifacts');
const SECRET = 'pw-that-must-never-show';

/**
 * The few DOM members the page-side functions use. The tests compile without the DOM typings, and the
 * page's CSP forbids eval, so page-side code must be functions, not strings.
 */
declare const document: {
  body: { getAttribute(name: string): string | null };
  querySelector(selector: string): { textContent: string | null; getAttribute(name: string): string | null } | null;
};

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

async function statusJson(m: TestMirror): Promise<StatusReport> {
  const r = await http(`${m.url}/status.json`);
  assert.equal(r.status, 200);
  return JSON.parse(r.body.toString('utf8')) as StatusReport;
}

/** Waits until the page has rendered a report taken after `after` (ISO time), and returns its time. */
async function renderedAfter(page: Page, after: string): Promise<string> {
  await page.waitForFunction((t) => (document.body.getAttribute('data-rendered') ?? '') > t, after, { timeout: 15_000 });
  return (await page.getAttribute('body', 'data-rendered'))!;
}

/** The raw value behind one number on the page. */
async function field(page: Page, name: string): Promise<string> {
  const v = await page.getAttribute(`[data-field="${name}"]`, 'data-value');
  assert.notEqual(v, null, `the page has ${name}`);
  return v!;
}

describe('status page in headless Chromium', () => {
  let upstream: Registry;
  let relay: Relay;
  let hub: HubRateLimit;
  let m: TestMirror;
  let img: GeneratedImage;
  let big: BlobFile;
  let ctx: BrowserContext;
  let page: Page;
  const requested: string[] = [];

  before(async () => {
    requireCommands('docker-registry', 'chromium');
    upstream = await startRegistry();
    relay = await startRelay({ target: upstream.url });
    hub = await startHubRateLimit({ target: upstream.url, limit: 100 });
    img = await makeImage({ layers: [64 * 1024, 2 * MiB] });
    await pushImageHttp(upstream.url, 'acme/app', 'v1', img);
    big = await randomBlobFile(await tmpDir('status-blobs-'), 32 * MiB);
    await putBlob(upstream.url, 'acme/app', big);
    m = await startMirror({
      upstreams: [`docker.io=${relay.url}`, `quay.io=${hub.url}`],
      credentials: { 'docker.io': { username: 'mirror', password: SECRET } },
      maxBandwidth: '200MB/s',
      tagTtl: '1s',
    });
    // Traffic to show: a cold pull (misses), the same again (hits), one unknown blob (an error).
    for (let i = 0; i < 2; i++) {
      assert.equal((await http(`${m.url}/v2/acme/app/manifests/v1`, { headers: { accept: img.manifestMediaType } })).status, 200);
      for (const b of [img.configBlob, ...img.layers]) assert.equal((await httpDigest(`${m.url}/v2/acme/app/blobs/${b.digest}`)).digest, b.digest);
    }
    assert.equal((await http(`${m.url}/v2/acme/app/blobs/sha256:${'0'.repeat(64)}?ns=docker.io&token=${SECRET}`)).status, 404);
    const userDataDir = await tmpDir('chromium-profile-');
    ctx = await chromium.launchPersistentContext(userDataDir, { executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS, viewport: { width: 1280, height: 1000 } });
    registerCleanup('chromium', () => ctx.close());
    page = ctx.pages()[0] ?? (await ctx.newPage());
    page.on('request', (r) => requested.push(r.url()));
  });
  after(cleanupAll);

  test('the page loads from the mirror, refreshes itself, and shows the numbers of /status.json', async () => {
    const res = await page.goto(`${m.url}/`);
    assert.equal(res?.status(), 200);
    assert.match(res?.headers()['content-type'] ?? '', /^text\/html/);
    await renderedAfter(page, '');
    // No traffic from here on: the counters stand still while the page and the test read them.
    const json = await statusJson(m);
    await renderedAfter(page, json.now);
    const t = json.traffic;
    assert.ok(t.hits >= 3 && t.misses >= 3, `hits ${t.hits}, misses ${t.misses}`);
    assert.equal(await field(page, 'traffic.hits'), String(t.hits));
    assert.equal(await field(page, 'traffic.misses'), String(t.misses));
    assert.equal(await field(page, 'traffic.hitRatio'), String(t.hitRatio));
    assert.equal(await page.textContent('[data-field="traffic.hitRatio"]'), `${(t.hitRatio! * 100).toFixed(1)} %`);
    assert.equal(await field(page, 'traffic.bytesServed'), String(t.bytesServed));
    assert.equal(await field(page, 'traffic.bytesFromUpstream'), String(t.bytesFromUpstream));
    assert.equal(await field(page, 'traffic.bytesSaved'), String(t.bytesSaved));
    assert.ok(t.bytesSaved > 2 * MiB, 'the second pull was saved');
    assert.equal(await field(page, 'traffic.fillsCompleted'), String(t.fillsCompleted));
    assert.equal(await field(page, 'errors.total'), String(json.errors.total));
    assert.equal(json.errors.recent[0]?.status, 404);
    assert.equal(json.errors.recent[0]?.path, `/v2/acme/app/blobs/sha256:${'0'.repeat(64)}`);
    assert.equal(await field(page, 'cache.source'), 'index', 'cache totals come from the durable index');
    assert.ok((json.cache.bytes ?? 0) > 2 * MiB && (json.cache.objects ?? 0) >= 3, `cache ${json.cache.bytes} B in ${json.cache.objects} objects`);
    assert.equal(await field(page, 'cache.bytes'), String(json.cache.bytes));
    assert.equal(await field(page, 'cache.objects'), String(json.cache.objects));
    assert.equal(await field(page, 'cache.capBytes'), String(json.cache.capBytes));
    assert.ok(json.cache.lifetime && json.cache.lifetime.hits >= t.hits, 'lifetime figures include this run');
    assert.equal(await field(page, 'bandwidth.overall'), '200000000');
    assert.equal(await field(page, 'version'), json.version);
    assert.equal(await field(page, 'fills.count'), '0');
    const up = json.upstreams[0]!;
    assert.equal(up.namespace, 'docker.io');
    assert.equal(up.state, 'ok');
    assert.ok(up.lastSuccessAt);
    assert.equal(await page.textContent('tr[data-upstream="docker.io"] td:nth-child(3)'), 'ok');
    assert.equal(await page.textContent('tr[data-upstream="docker.io"] td:nth-child(2)'), up.endpoint);
    assert.ok(((await page.textContent('#errors')) ?? '').includes('BLOB_UNKNOWN'));
    assert.equal(await page.textContent('#peers'), 'none');
  });

  test('nothing secret on the page or in /status.json, and nothing loaded from elsewhere', async () => {
    const json = JSON.stringify(await statusJson(m));
    const html = await page.content();
    for (const text of [json, html]) {
      assert.ok(!text.includes(SECRET), 'no credential, no query string');
      assert.ok(!text.includes('token='), 'no query string');
      assert.ok(!/authorization/i.test(text));
    }
    assert.ok(requested.length >= 2);
    for (const u of requested) assert.ok(u.startsWith(`${m.url}/`), `the page only talks to the mirror: ${u}`);
  });

  test('a fill in flight shows a growing progress bar and its joiner; a screenshot is kept', async () => {
    relay.setThrottle(5 * MiB); // the 32 MiB fill takes about 6 s
    const first = httpDigest(`${m.url}/v2/acme/app/blobs/${big.digest}`);
    await page.waitForSelector(`tr[data-fill="${big.digest}"]`, { timeout: 15_000 });
    const joiner = httpDigest(`${m.url}/v2/acme/app/blobs/${big.digest}`);
    const progress = async () => Number(await page.getAttribute(`tr[data-fill="${big.digest}"] .bar`, 'data-fraction'));
    const p1 = await progress();
    await renderedAfter(page, (await page.getAttribute('body', 'data-rendered'))!);
    await page.waitForFunction((d) => (document.querySelector(`tr[data-fill="${d}"]`)?.textContent ?? '').includes('1 joined'), big.digest, { timeout: 15_000 });
    const p2 = await progress();
    assert.ok(p2 > p1 && p2 < 1, `progress grows: ${p1} → ${p2}`);
    const row = (await page.textContent(`tr[data-fill="${big.digest}"]`)) ?? '';
    assert.match(row, /32\.0 MiB/);
    assert.match(row, /2 reading, 1 joined/);
    const width = await page.$eval(`tr[data-fill="${big.digest}"] .bar > i`, (e) => (e as unknown as { style: { width: string } }).style.width);
    assert.ok(parseFloat(width) > 0, `the bar is drawn: ${width}`);
    const json = await statusJson(m);
    assert.equal(json.fills.length, 1);
    assert.equal(json.fills[0]!.size, 32 * MiB);
    await mkdir(ARTIFACTS, { recursive: true });
    const shot = join(ARTIFACTS, 'status-page.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`status page screenshot: ${shot}`);
    for (const r of await Promise.all([first, joiner])) assert.equal(r.digest, big.digest);
    relay.setThrottle(undefined);
    await page.waitForFunction(() => document.querySelector('[data-field="fills.count"]')?.getAttribute('data-value') === '0', undefined, { timeout: 15_000 });
  });

  test('an upstream that goes down shows as failing, with its last error, and as serving stale', async () => {
    relay.setMode('down');
    await new Promise((r) => setTimeout(r, 1200)); // past the tag TTL
    const stale = await http(`${m.url}/v2/acme/app/manifests/v1`, { headers: { accept: img.manifestMediaType } });
    assert.equal(stale.status, 200, 'served stale');
    const json = await statusJson(m);
    const up = json.upstreams[0]!;
    assert.equal(up.state, 'failing');
    assert.equal(up.lastError?.kind, 'tag-head');
    assert.ok(up.lastError?.reason, 'a reason');
    assert.equal(up.servingStale, true);
    assert.ok(up.staleServed >= 1);
    await page.waitForFunction(() => document.querySelector('tr[data-upstream="docker.io"] td:nth-child(6)')?.textContent === 'yes', undefined, { timeout: 15_000 });
    assert.equal(await page.textContent('tr[data-upstream="docker.io"] td:nth-child(3)'), 'failing');
    assert.ok(((await page.textContent('tr[data-upstream="docker.io"] td:nth-child(5)')) ?? '').startsWith(up.lastError!.reason));
    await page.screenshot({ path: join(ARTIFACTS, 'status-page-upstream-down.png'), fullPage: true });
    relay.setMode('pass');
  });

  test('the rate-limit headroom an upstream announces is shown', async () => {
    const before = await statusJson(m);
    assert.equal(before.upstreams[1]!.namespace, 'quay.io');
    assert.equal(before.upstreams[1]!.state, 'unknown', 'not asked yet');
    assert.equal(before.upstreams[1]!.rateLimit, null);
    const r = await http(`${m.url}/v2/acme/app/manifests/v1?ns=quay.io`, { headers: { accept: img.manifestMediaType } });
    assert.equal(r.status, 200);
    const json = await statusJson(m);
    const rl = json.upstreams[1]!.rateLimit;
    assert.equal(rl?.remaining, hub.remaining());
    assert.equal(rl?.limit, 100);
    assert.equal(rl?.windowSeconds, 21600);
    await page.waitForFunction(() => (document.querySelector('tr[data-upstream="quay.io"] td:nth-child(7)')?.textContent ?? '').includes('/ 100'), undefined, { timeout: 15_000 });
    assert.equal(await page.textContent('tr[data-upstream="quay.io"] td:nth-child(7)'), `${hub.remaining()} / 100 per 6h 0m 0s`);
    assert.equal(await page.textContent('tr[data-upstream="quay.io"] td:nth-child(3)'), 'ok');
  });
});
