// Regenerates demo/ from shared/demo/corpus.ts (run after `npm run build`);
// test/unit/demo-files.test.ts fails if the committed files drift from it.
import { mkdirSync, writeFileSync } from 'node:fs';
import { DEMO_HISTORY, DEMO_WORK_TARGET, amendmentSnapshotRecords, demoSnapshotRecords, enactmentSnapshotRecords } from '../dist/shared/demo/corpus.js';

const dir = new URL('../demo/', import.meta.url);
const ndjson = (records) => records.map((r) => JSON.stringify(r)).join('\n') + '\n';
writeFileSync(new URL('icx-work.snapshot.ndjson', dir), ndjson(demoSnapshotRecords()));
writeFileSync(new URL('icx-work.target.json', dir), JSON.stringify(DEMO_WORK_TARGET, null, 2) + '\n');
// The snapshots of the history `cutter demo seed` replays (DESIGN §2).
const history = new URL('history/', dir);
mkdirSync(history, { recursive: true });
writeFileSync(new URL(DEMO_HISTORY.enactment.snapshot, history), ndjson(enactmentSnapshotRecords()));
writeFileSync(new URL(DEMO_HISTORY.amendment.snapshot, history), ndjson(amendmentSnapshotRecords()));
