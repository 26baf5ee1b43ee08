'use strict';
// The steady-load generators, each run as a process of its own:
//   autocannon (npm, the default): bench/load-autocannon.js
//   wrk (when installed): wrk -t1 with a Lua script that counts responses by the
//   pid in the body and prints its summary as JSON.
// Both return { requests, rps, p50, p99 (ms), errors: {kind: n}, byPid, loaderCpu (cores) }.
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const WRK_LUA = `
counts = {}
local threads = {}
function setup(thread) table.insert(threads, thread) end
function response(status, headers, body)
  local pid = string.sub(body, 7)
  counts[pid] = (counts[pid] or 0) + 1
end
function done(summary, latency, requests)
  local parts = {}
  local agg = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("counts")) do agg[k] = (agg[k] or 0) + v end
  end
  for k, v in pairs(agg) do table.insert(parts, string.format('"%s":%d', k, v)) end
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},"byPid":{%s}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout, table.concat(parts, ",")))
end
`;

let luaFile;
function wrkScript() {
  if (!luaFile) {
    luaFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'c2bench-wrk-')), 'count.lua');
    fs.writeFileSync(luaFile, WRK_LUA);
  }
  return luaFile;
}

/** The path of a command on PATH, or null. */
function which(cmd) {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

function wrkVersion() {
  const p = which('wrk');
  if (!p) return null;
  try {
    execFileSync(p, ['-v'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    // wrk -v prints its version and exits 1.
    const out = `${e.stdout || ''}${e.stderr || ''}`;
    const m = /wrk\s+(\S+)/.exec(out);
    return m ? m[1] : 'unknown';
  }
  return 'unknown';
}

/** Remove the Lua script's temporary directory (at the end of a run). */
function cleanup() {
  if (luaFile) fs.rmSync(path.dirname(luaFile), { recursive: true, force: true });
  luaFile = undefined;
}

/** Load generators running now, so an interrupted bench can stop them. */
const running = new Set();

function stopAll() {
  for (const p of running) {
    try {
      p.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
}

function collect(proc) {
  running.add(proc);
  proc.on('close', () => running.delete(proc));
  let out = '';
  let err = '';
  proc.stdout.on('data', (d) => {
    out += d;
  });
  proc.stderr.on('data', (d) => {
    err += d;
  });
  return new Promise((resolve) => proc.on('close', (code) => resolve({ code, out, err })));
}

/** bash's `times`: the children's user and system seconds, from its second line. */
function parseTimes(err) {
  const lines = err
    .trim()
    .split('\n')
    .filter((l) => /^\d+m[\d.]+s \d+m[\d.]+s$/.test(l.trim()));
  const last = lines[lines.length - 1];
  if (!last) return null;
  const sec = (s) => {
    const m = /(\d+)m([\d.]+)s/.exec(s);
    return Number(m[1]) * 60 + Number(m[2]);
  };
  const [u, s] = last.trim().split(' ');
  return sec(u) + sec(s);
}

async function runWrk(o) {
  const duration = Math.max(1, Math.round(o.duration));
  const args = ['-t1', `-c${o.connections}`, `-d${duration}s`, '--timeout', '10s', '-s', wrkScript()];
  if (o.close) args.push('-H', 'Connection: close');
  args.push(`http://${o.host}:${o.port}/`);
  const cmd = [...(o.pin || []), 'wrk', ...args];
  // `times` in the wrapping shell reports wrk's own CPU time.
  const proc = spawn('bash', ['-c', '"$@"; rc=$?; times >&2; exit $rc', 'bash', ...cmd], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  proc.kill = (sig) => {
    try {
      process.kill(-proc.pid, sig);
    } catch {
      /* gone */
    }
    return true;
  };
  const { code, out, err } = await collect(proc);
  const line = out.split('\n').find((l) => l.startsWith('WRKJSON '));
  if (!line) throw new Error(`wrk failed (exit ${code}): ${err.trim() || out.trim()}`);
  const j = JSON.parse(line.slice(8));
  const errors = {};
  for (const [k, v] of Object.entries(j.errors)) if (v) errors[k === 'status' ? 'non-2xx' : k] = v;
  const secs = j.duration_us / 1e6;
  const cpu = parseTimes(err);
  return {
    requests: j.requests,
    rps: j.requests / secs,
    p50: j.p50_us / 1000,
    p99: j.p99_us / 1000,
    errors,
    byPid: j.byPid,
    loaderCpu: cpu === null ? null : cpu / secs,
  };
}

async function runAutocannon(o) {
  const cfg = {
    url: `http://${o.host}:${o.port}/`,
    connections: o.connections,
    duration: o.duration,
    close: !!o.close,
  };
  const argv = [...(o.pin || []), process.execPath, path.join(__dirname, 'load-autocannon.js'), JSON.stringify(cfg)];
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const proc = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const { code, out, err } = await collect(proc);
  let j;
  try {
    j = JSON.parse(out.trim().split('\n').pop());
  } catch {
    j = null;
  }
  if (!j || j.error) throw new Error(`autocannon failed (exit ${code}): ${(j && j.error) || err.trim() || out.trim()}`);
  return {
    requests: j.requests,
    rps: j.rps,
    p50: j.p50,
    p99: j.p99,
    errors: j.errors,
    byPid: j.byPid,
    loaderCpu: j.cpu / j.wall,
  };
}

function runLoad(loader, o) {
  return loader === 'wrk' ? runWrk(o) : runAutocannon(o);
}

module.exports = { runLoad, which, wrkVersion, stopAll, cleanup };
