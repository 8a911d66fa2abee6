/**
 * The status page: one self-contained HTML document (inline CSS and script, no external asset) that
 * fetches `/status.json` every 2 s and renders it. Values from the report are put into the DOM as text,
 * never as markup, so a path in the error list cannot inject anything. Each number also carries its raw
 * value in `data-value` (what the browser test compares with `/status.json`).
 */

const CSS = `
:root{--bg:#f6f7f9;--card:#fff;--ink:#1d2330;--mute:#6b7383;--line:#e3e6eb;--ok:#1f9d55;--bad:#d64545;--warn:#c98a00;--bar:#3b82f6}
*{box-sizing:border-box}body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--ink)}
header{display:flex;gap:16px;align-items:baseline;padding:14px 20px;background:#1d2330;color:#fff}
header h1{font-size:18px;margin:0}header .meta{color:#b8c0cc;font-size:13px}header .live{margin-left:auto;font-size:13px}
.dot{display:inline-block;width:8px;height:8px;border-radius:50%;background:var(--ok);margin-right:6px}.dot.off{background:var(--bad)}
main{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:14px;padding:16px 20px}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 14px}
section.wide{grid-column:1/-1}h2{font-size:13px;text-transform:uppercase;letter-spacing:.04em;color:var(--mute);margin:0 0 8px}
dl{display:grid;grid-template-columns:auto 1fr;gap:4px 14px;margin:0}dt{color:var(--mute)}dd{margin:0;font-variant-numeric:tabular-nums}
.big{font-size:26px;font-weight:600}table{width:100%;border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:5px 6px;border-bottom:1px solid var(--line);vertical-align:middle}th{color:var(--mute);font-weight:500;font-size:12px}
td.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}.empty{color:var(--mute);font-style:italic}
.bar{position:relative;height:14px;background:#e8edf5;border-radius:7px;overflow:hidden;min-width:140px}
.bar>i{position:absolute;left:0;top:0;bottom:0;background:var(--bar);border-radius:7px}
.bar.cap>i{background:var(--warn)}.ok{color:var(--ok)}.bad{color:var(--bad)}.warn{color:var(--warn)}
`;

const SCRIPT = `
(function(){
  var units=['B','KiB','MiB','GiB','TiB'];
  function bytes(n){if(n===null||n===undefined)return 'n/a';var i=0;while(n>=1024&&i<units.length-1){n/=1024;i++}return (i?n.toFixed(1):String(n))+' '+units[i]}
  function rate(n){return n?(n/1e6).toFixed(1)+' MB/s':'unlimited'}
  function pct(x){return x===null||x===undefined?'n/a':(x*100).toFixed(1)+' %'}
  function dur(s){s=Math.floor(s);var d=Math.floor(s/86400),h=Math.floor(s%86400/3600),m=Math.floor(s%3600/60),r=s%60;return (d?d+'d ':'')+(d||h?h+'h ':'')+(d||h||m?m+'m ':'')+r+'s'}
  function ago(iso,now){if(!iso)return 'never';var s=Math.max(0,(Date.parse(now)-Date.parse(iso))/1000);return dur(s)+' ago'}
  function el(tag,attrs,kids){var e=document.createElement(tag);if(attrs)for(var k in attrs){if(k==='text')e.textContent=attrs[k];else e.setAttribute(k,attrs[k])}(kids||[]).forEach(function(c){e.appendChild(c)});return e}
  function set(field,text,value){var e=document.querySelector('[data-field="'+field+'"]');if(!e)return;e.textContent=text;e.setAttribute('data-value',value===null||value===undefined?'':String(value))}
  function bar(frac,cls){var i=el('i');i.style.width=(Math.max(0,Math.min(1,frac))*100).toFixed(1)+'%';return el('div',{'class':'bar'+(cls?' '+cls:''),'data-fraction':String(frac)},[i])}
  function rows(id,list,cols,render){var body=document.getElementById(id);body.textContent='';if(!list.length){body.appendChild(el('tr',{},[el('td',{'class':'empty',colspan:String(cols),text:'none'})]));return}list.forEach(function(x){body.appendChild(render(x))})}
  function render(r){
    set('version',r.version,r.version);set('uptime',dur(r.uptimeSeconds),r.uptimeSeconds);set('updated',new Date(r.now).toLocaleTimeString(),r.now);
    var c=r.cache;set('cache.bytes',bytes(c.bytes),c.bytes);set('cache.capBytes',c.capBytes===null?'none':bytes(c.capBytes),c.capBytes);
    set('cache.objects',c.objects===null?'n/a':String(c.objects),c.objects);set('cache.diskFreeBytes',bytes(c.diskFreeBytes),c.diskFreeBytes);
    set('cache.source',c.source==='index'?'durable index':'no index yet',c.source);
    var cb=document.getElementById('cache-bar');cb.textContent='';if(c.bytes!==null&&c.capBytes)cb.appendChild(bar(c.bytes/c.capBytes,'cap'));
    var t=r.traffic;set('traffic.hitRatio',pct(t.hitRatio),t.hitRatio);set('traffic.hits',String(t.hits),t.hits);set('traffic.misses',String(t.misses),t.misses);
    set('traffic.bytesServed',bytes(t.bytesServed),t.bytesServed);set('traffic.bytesFromUpstream',bytes(t.bytesFromUpstream),t.bytesFromUpstream);
    set('traffic.bytesSaved',bytes(t.bytesSaved),t.bytesSaved);set('traffic.fillsCompleted',String(t.fillsCompleted),t.fillsCompleted);set('traffic.fillsFailed',String(t.fillsFailed),t.fillsFailed);
    set('bandwidth.overall',rate(r.bandwidth.overall),r.bandwidth.overall);
    var lt=c.lifetime;set('cache.lifetime',lt?pct(lt.hits+lt.misses?lt.hits/(lt.hits+lt.misses):null)+' hits, '+bytes(lt.bytesSaved)+' saved':'n/a (no index yet)',lt?lt.bytesSaved:null);
    rows('upstreams',r.upstreams,7,function(u){
      var st=el('td',{'class':u.state==='ok'?'ok':u.state==='failing'?'bad':'',text:u.state});
      var rl=u.rateLimit?u.rateLimit.remaining+(u.rateLimit.limit!==null?' / '+u.rateLimit.limit:'')+(u.rateLimit.windowSeconds?' per '+dur(u.rateLimit.windowSeconds):''):'unknown';
      return el('tr',{'data-upstream':u.namespace},[el('td',{text:u.namespace}),el('td',{'class':'mono',text:u.endpoint}),st,el('td',{text:ago(u.lastSuccessAt,r.now)}),
        el('td',{'class':u.lastError?'bad':'',text:u.lastError?u.lastError.reason+' ('+u.lastError.kind+', '+ago(u.lastError.at,r.now)+')':'none'}),
        el('td',{'class':u.servingStale?'warn':'',text:u.servingStale?'yes':'no'}),el('td',{text:rl+(u.bandwidthLimit?' · cap '+rate(u.bandwidthLimit):'')})])});
    set('fills.count',String(r.fills.length),r.fills.length);
    rows('fills',r.fills,6,function(f){var frac=f.size?f.written/f.size:0;
      return el('tr',{'data-fill':f.digest,'data-written':String(f.written),'data-size':String(f.size)},[el('td',{'class':'mono',text:f.digest.slice(0,19)+'…'}),el('td',{text:f.namespace}),
        el('td',{},[bar(frac)]),el('td',{text:bytes(f.written)+' / '+(f.size===null?'?':bytes(f.size))+(f.size?' ('+(frac*100).toFixed(0)+' %)':'')}),
        el('td',{text:f.readers+' reading, '+f.joiners+' joined'}),el('td',{text:dur(f.elapsedMs/1000)})])});
    set('errors.total',String(r.errors.total),r.errors.total);
    rows('errors',r.errors.recent,5,function(e){return el('tr',{},[el('td',{text:new Date(e.at).toLocaleTimeString()}),el('td',{text:String(e.status)}),
      el('td',{text:e.code||'-'}),el('td',{text:e.reason||'-'}),el('td',{'class':'mono',text:e.method+' '+e.path})])});
    rows('peers',r.peers,3,function(p){return el('tr',{},[el('td',{text:p.name}),el('td',{text:p.state}),el('td',{text:p.lastSeen?ago(p.lastSeen,r.now):'-'})])});
    document.body.setAttribute('data-rendered',r.now);
  }
  var live=document.getElementById('live');
  function tick(){fetch('status.json',{cache:'no-store'}).then(function(res){if(!res.ok)throw new Error('HTTP '+res.status);return res.json()})
    .then(function(r){render(r);live.className='dot';live.nextSibling.textContent='live'})
    .catch(function(e){live.className='dot off';live.nextSibling.textContent='offline: '+e.message})
    .then(function(){setTimeout(tick,2000)})}
  tick();
})();
`;

const HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<link rel="icon" href="data:,"><title>regmirror status</title><style>${CSS}</style></head>
<body>
<header><h1>regmirror</h1><span class="meta">version <span data-field="version">…</span> · up <span data-field="uptime">…</span> · updated <span data-field="updated">…</span></span>
<span class="live"><span id="live" class="dot off"></span><span>connecting</span></span></header>
<main>
<section><h2>Cache</h2><dl>
<dt>Used</dt><dd data-field="cache.bytes">…</dd>
<dt>Cap</dt><dd data-field="cache.capBytes">…</dd>
<dt></dt><dd id="cache-bar"></dd>
<dt>Objects</dt><dd data-field="cache.objects">…</dd>
<dt>Disk free</dt><dd data-field="cache.diskFreeBytes">…</dd>
<dt>Totals from</dt><dd data-field="cache.source">…</dd>
<dt>Over its life</dt><dd data-field="cache.lifetime">…</dd>
</dl></section>
<section><h2>Since start</h2><dl>
<dt>Hit ratio</dt><dd class="big" data-field="traffic.hitRatio">…</dd>
<dt>Hits / misses</dt><dd><span data-field="traffic.hits">…</span> / <span data-field="traffic.misses">…</span></dd>
<dt>Served</dt><dd data-field="traffic.bytesServed">…</dd>
<dt>From upstreams</dt><dd data-field="traffic.bytesFromUpstream">…</dd>
<dt>Saved</dt><dd data-field="traffic.bytesSaved">…</dd>
<dt>Fills done / failed</dt><dd><span data-field="traffic.fillsCompleted">…</span> / <span data-field="traffic.fillsFailed">…</span></dd>
<dt>Bandwidth cap</dt><dd data-field="bandwidth.overall">…</dd>
</dl></section>
<section class="wide"><h2>Upstreams</h2><table><thead><tr><th>Namespace</th><th>Endpoint</th><th>State</th><th>Last success</th><th>Last error</th><th>Serving stale</th><th>Rate limit left</th></tr></thead><tbody id="upstreams"></tbody></table></section>
<section class="wide"><h2>Fills in flight (<span data-field="fills.count">0</span>)</h2><table><thead><tr><th>Digest</th><th>Upstream</th><th>Progress</th><th>Bytes</th><th>Clients</th><th>Elapsed</th></tr></thead><tbody id="fills"></tbody></table></section>
<section class="wide"><h2>Recent errors (<span data-field="errors.total">0</span> since start)</h2><table><thead><tr><th>Time</th><th>Status</th><th>Code</th><th>Reason</th><th>Request</th></tr></thead><tbody id="errors"></tbody></table></section>
<section class="wide"><h2>Cluster peers</h2><table><thead><tr><th>Peer</th><th>State</th><th>Last seen</th></tr></thead><tbody id="peers"></tbody></table></section>
</main>
<script>${SCRIPT}</script>
</body></html>
`;

/** The page, encoded once. */
export const STATUS_PAGE = Buffer.from(HTML, 'utf8');

/** Only inline style and script, and fetches to this origin: the page loads nothing from anywhere else. */
export const STATUS_PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
