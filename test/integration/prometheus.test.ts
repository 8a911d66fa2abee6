/**
 * Alerts and dashboard against a real Prometheus (issue 12, item 3), and the metric catalog as a
 * scraper sees it (item 4):
 * - `promtool check rules` and `promtool test rules` pass on deploy/prometheus;
 * - a real Prometheus scrapes a real mirror process (the built CLI) that pulls through a Docker Hub
 *   stand-in (a real registry behind a relay adding Hub's rate-limit headers); after a cold and a
 *   warm pull, every PromQL expression of the Grafana dashboard and of the rules parses and returns
 *   data, every recording rule has been evaluated into a series, and no alert is pending on a healthy
 *   mirror (the `> 0` guards on unwired gauges hold).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { cleanupAll, requireCommands, tmpDir } from '../harness/proc.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { makeImage, pullImage, pushImage, type GeneratedImage } from '../harness/oci.js';
import { promtool, startPrometheus, type Prometheus, type PromSample } from '../harness/prometheus.js';
import { startHubRateLimit, type HubRateLimit } from '../harness/hub-ratelimit.js';
import { startMirrorProcess, type MirrorProcess } from '../harness/mirror-proc.js';

const PROM_DIR = fileURLToPath(new URL('../../../deploy/prometheus/', import.meta.url));
const RULES = `${PROM_DIR}alerts.yml`;
const DASHBOARD = fileURLToPath(new URL('../../../deploy/grafana/regmirror.json', import.meta.url));

interface Rule {
  record?: string;
  alert?: string;
  expr: string;
}

function rules(): Rule[] {
  const doc = parseYaml(readFileSync(RULES, 'utf8')) as { groups: Array<{ rules: Rule[] }> };
  return doc.groups.flatMap((g) => g.rules);
}

interface Panel {
  type: string;
  title: string;
  targets?: Array<{ expr: string }>;
}

/** Every dashboard query, with Grafana's variables given values Prometheus understands. */
function dashboardQueries(): Array<{ panel: string; expr: string }> {
  const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Panel[] };
  return dash.panels.flatMap((p) =>
    (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr.replaceAll('$__rate_interval', '1m').replaceAll('$__range', '10m') })),
  );
}

/** Metric names an expression reads (recording-rule names, with a colon, excluded). */
function metricNames(expr: string): string[] {
  const names = expr.match(/\b(?:regmirror|process|nodejs)_[a-z0-9_]+/g) ?? [];
  return [...new Set(names.map((n) => n.replace(/_(bucket|count|sum)$/, '')))];
}

function value(samples: PromSample[]): number {
  assert.equal(samples.length, 1, JSON.stringify(samples));
  return Number(samples[0]!.value[1]);
}

describe('Prometheus rules and the Grafana dashboard', () => {
  test('promtool check rules and promtool test rules pass', async () => {
    requireCommands('promtool');
    const check = await promtool(['check', 'rules', RULES]);
    assert.match(check.output, /SUCCESS: \d+ rules found/);
    const unit = await promtool(['test', 'rules', 'alerts.test.yml'], PROM_DIR);
    assert.match(unit.output, /SUCCESS/);
  });

  describe('a real Prometheus scraping a real mirror', () => {
    let reg: Registry;
    let hub: HubRateLimit;
    let mirror: MirrorProcess;
    let prom: Prometheus;
    let img: GeneratedImage;
    let spentCold = 0;

    before(async () => {
      requireCommands('prometheus', 'docker-registry', 'skopeo');
      reg = await startRegistry({ name: 'hub-registry' });
      img = await makeImage({ layers: [300_000, 40_000], tag: 'v1' });
      await pushImage(img, reg.host, 'library/app:v1');
      hub = await startHubRateLimit({ target: reg.url, limit: 100 });
      // Tag TTL 0: the warm pull revalidates its tag with a HEAD, which Hub answers with the headers but counts no pull.
      mirror = await startMirrorProcess(['--upstream', `docker.io=${hub.url}`, '--log-level', 'info', '--tag-ttl', '0s']);
      prom = await startPrometheus({ targets: [mirror.host], ruleFiles: [RULES] });
      await prom.waitForScrapes(1);
      // Cold, a scrape, warm, a scrape: rates see both the misses and the hits.
      await pullImage(mirror.host, 'library/app:v1', await tmpDir('pull-cold-'));
      spentCold = hub.limit - hub.remaining();
      await prom.waitForScrapes(2);
      await pullImage(mirror.host, 'library/app:v1', await tmpDir('pull-warm-'));
      await prom.waitForScrapes(3);
    });
    after(cleanupAll);

    test('every metric the dashboard and the rules read is in the mirror’s catalog', async () => {
      const text = await (await fetch(`${mirror.url}/metrics`)).text();
      const catalog = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
      assert.ok(catalog.has('process_cpu_seconds_total') && catalog.has('nodejs_eventloop_lag_p99_seconds'), 'standard process metric names');
      const used = [...dashboardQueries().map((q) => q.expr), ...rules().map((r) => r.expr)].flatMap(metricNames);
      const missing = [...new Set(used)].filter((n) => !catalog.has(n));
      assert.deepEqual(missing, [], 'names the mirror does not export');
    });

    test('every dashboard expression parses and returns data; the key panels show the pulls', async () => {
      const empty: string[] = [];
      for (const q of dashboardQueries()) {
        const samples = await prom.query(q.expr);
        if (samples.length === 0) empty.push(`${q.panel}: ${q.expr}`);
      }
      assert.deepEqual(empty, [], 'dashboard queries without data');

      const [hitRatio] = dashboardQueries().filter((q) => q.panel === 'Hit ratio by kind');
      const ratio = await prom.query(hitRatio!.expr);
      const blob = ratio.find((s) => s.metric.kind === 'blob');
      assert.ok(blob && Number(blob.value[1]) > 0, `blob hit ratio after a warm pull: ${JSON.stringify(ratio)}`);
      const [saved] = dashboardQueries().filter((q) => q.panel === 'Bytes saved');
      const imageBytes = img.layers.reduce((s, l) => s + l.size, 0);
      assert.ok(value(await prom.query(saved!.expr)) >= imageBytes, 'the warm pull saved at least the layers');
      const remaining = await prom.query('regmirror_upstream_ratelimit_remaining');
      assert.deepEqual(remaining.map((s) => [s.metric.upstream, Number(s.value[1])]), [['docker.io', hub.remaining()]], 'the headroom gauge says what the last Hub answer said');
      assert.equal(value(await prom.query('regmirror_upstream_ratelimit_limit')), 100);
      assert.ok(spentCold > 0, 'the cold pull’s manifest GETs spent pulls');
      assert.equal(hub.limit - hub.remaining(), spentCold, 'the warm pull’s revalidation HEAD spent none');
    });

    test('every rule expression parses and returns data; recording rules are evaluated; a healthy mirror raises no alert', async () => {
      const all = rules();
      const empty: string[] = [];
      for (const r of all) {
        const samples = await prom.query(r.expr);
        // A recording rule is a signal and must always exist; an alert returns data only when it fires.
        if (r.record && samples.length === 0) empty.push(`${r.record}: ${r.expr}`);
      }
      assert.deepEqual(empty, [], 'recording rules without data');
      await prom.waitForScrapes(2); // rules are evaluated at the scrape interval
      for (const r of all.filter((x) => x.record)) {
        assert.ok((await prom.query(r.record!)).length > 0, `Prometheus recorded ${r.record}`);
      }
      assert.equal(value(await prom.query('regmirror:upstream_errors:ratio_rate5m')), 0, 'no upstream errors');
      assert.equal(value(await prom.query('regmirror:ratelimit_remaining:ratio')), hub.remaining() / 100);
      const alerts = await prom.query('ALERTS');
      assert.deepEqual(alerts.map((a) => a.metric.alertname), [], 'no alert pending or firing');
      const ruleGroups = (await (await fetch(`${prom.url}/api/v1/rules`)).json()) as { data: { groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }> } };
      const unhealthy = ruleGroups.data.groups.flatMap((g) => g.rules).filter((r) => r.health !== 'ok');
      assert.deepEqual(unhealthy.map((r) => `${r.name}: ${r.health} ${r.lastError ?? ''}`), []);
      assert.equal(ruleGroups.data.groups.flatMap((g) => g.rules).length, all.length, 'Prometheus loaded every rule');
    });
  });
});
