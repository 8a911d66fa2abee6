/** The metric catalog follows Prometheus naming conventions, and rate-limit headers parse as Docker Hub sends them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FILL_BUCKETS, Metrics, parseRateLimitHeader } from '../../src/metrics.js';

const UNITS = ['seconds', 'bytes'];

test('every regmirror metric: counters end in _total, a unit is the last word before it, no unit hides mid-name', async () => {
  const m = new Metrics();
  const all = await m.registry.getMetricsAsJSON();
  assert.ok(all.length >= 38, `catalog has ${all.length} metrics`);
  for (const metric of all) {
    assert.match(metric.name, /^regmirror_[a-z0-9_]+$/);
    const words = metric.name.replace(/_total$/, '').split('_');
    if (String(metric.type) === 'counter') assert.match(metric.name, /_total$/, `${metric.name}: a counter ends in _total`);
    else assert.doesNotMatch(metric.name, /_total$/, `${metric.name}: only counters end in _total`);
    for (const unit of UNITS) {
      const at = words.indexOf(unit);
      if (at >= 0) assert.equal(at, words.length - 1, `${metric.name}: the unit ${unit} comes last`);
    }
    if (String(metric.type) === 'histogram') assert.ok(words.at(-1) === 'seconds' || words.at(-1) === 'bytes', `${metric.name}: a histogram names its unit`);
    assert.ok(metric.help.length > 10, `${metric.name} has help text`);
  }
  const names = new Set(all.map((x) => x.name));
  for (const want of [
    'regmirror_served_bytes_total',
    'regmirror_time_to_first_byte_seconds',
    'regmirror_upstream_ratelimit_remaining',
    'regmirror_upstream_ratelimit_limit',
    'regmirror_cache_size_bytes',
    'regmirror_cache_objects',
    'regmirror_cache_max_size_bytes',
    'regmirror_filesystem_free_bytes',
    'regmirror_evictions_total',
    'regmirror_evicted_bytes_total',
    'regmirror_uncached_pulls_total',
    'regmirror_index_errors_total',
    'regmirror_redis_errors_total',
    'regmirror_redis_up',
    'regmirror_redis_operation_duration_seconds',
    'regmirror_upstream_last_success_timestamp_seconds',
    'regmirror_cluster_peers',
  ]) {
    assert.ok(names.has(want), `catalog has ${want}`);
  }
  assert.ok(!names.has('regmirror_bytes_served_total'), 'the old name is gone');
});

test('process metrics keep their standard names (process_*, nodejs_*), without the regmirror_ prefix', async () => {
  const m = new Metrics({ defaultMetrics: true });
  const text = await m.registry.metrics();
  assert.match(text, /^process_cpu_user_seconds_total /m);
  assert.match(text, /^process_resident_memory_bytes /m);
  assert.match(text, /^nodejs_heap_size_used_bytes /m);
  assert.doesNotMatch(text, /^regmirror_process_/m);
  assert.doesNotMatch(text, /^regmirror_nodejs_/m);
});

test('fill durations: buckets from 50 ms to 15 minutes', async () => {
  assert.equal(FILL_BUCKETS[0], 0.05);
  assert.equal(FILL_BUCKETS.at(-1), 900);
  const m = new Metrics();
  m.fillDuration.observe(42);
  const text = await m.registry.metrics();
  assert.match(text, /regmirror_fill_duration_seconds_bucket\{le="30"\} 0/);
  assert.match(text, /regmirror_fill_duration_seconds_bucket\{le="60"\} 1/);
  assert.match(text, /regmirror_fill_duration_seconds_bucket\{le="900"\} 1/);
});

test('rate-limit headers: Docker Hub’s "N;w=21600", a bare number, and garbage', async () => {
  assert.equal(parseRateLimitHeader('100;w=21600'), 100);
  assert.equal(parseRateLimitHeader(' 76 ; w=21600'), 76);
  assert.equal(parseRateLimitHeader('0;w=21600'), 0);
  assert.equal(parseRateLimitHeader('5000'), 5000);
  assert.equal(parseRateLimitHeader(['3;w=60', '4;w=60']), 3);
  assert.equal(parseRateLimitHeader(undefined), undefined);
  assert.equal(parseRateLimitHeader('w=21600;100'), undefined);
  assert.equal(parseRateLimitHeader('-1;w=1'), undefined);
  assert.equal(parseRateLimitHeader('12abc'), undefined);

  const m = new Metrics();
  m.observeRateLimit('docker.io', { 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '76;w=21600' });
  m.observeRateLimit('ghcr.io', { 'content-type': 'application/json' });
  const text = await m.registry.metrics();
  assert.match(text, /^regmirror_upstream_ratelimit_remaining\{upstream="docker.io"\} 76$/m);
  assert.match(text, /^regmirror_upstream_ratelimit_limit\{upstream="docker.io"\} 100$/m);
  assert.doesNotMatch(text, /ghcr\.io/, 'no gauge for an upstream that sends no headers');
});
