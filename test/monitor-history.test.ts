// The monitor's history (lib/monitor/history.ts) stays bounded under a recycle storm (issue 25,
// item 16): five minutes of samples, and at most MAX_MARKS marks however many recycles come.
import t from 'tap';
import { EventEmitter } from 'node:events';
import { History, MAX_MARKS } from '../dist/monitor/history.js';
import type { MasterStatus } from '../dist/shared/protocol.js';

const status = () =>
  ({
    retired: { connections: 0, requests: 0 },
    workers: [],
  }) as unknown as MasterStatus;

t.test('a recycle storm: the newest MAX_MARKS marks are kept, no more', async (t) => {
  const events = new EventEmitter();
  const h = new History(status, events);
  t.teardown(() => h.close());
  const n = MAX_MARKS * 3;
  for (let i = 0; i < n; i++) events.emit('recycled', 1000 + i, 2000 + i, 'maxRequests');
  events.emit('reloaded', [[1, 2]]);
  const marks = h.json().marks;
  t.equal(marks.length, MAX_MARKS, `${MAX_MARKS} marks of ${n + 1}`);
  t.match(marks[marks.length - 1], { kind: 'reloaded', label: 'reload of 1 worker(s)' }, 'the newest last');
  t.equal(marks[0].label, `${1000 + n - MAX_MARKS + 1} → ${2000 + n - MAX_MARKS + 1} (maxRequests)`, 'the oldest went');
  t.equal(h.json().samples.length, 1, 'one sample so far (one a second)');
});
