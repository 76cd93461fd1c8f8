// Regenerates demo/ from shared/demo/corpus.ts (run after `npm run build`);
// test/unit/demo-files.test.ts fails if the committed files drift from it.
import { writeFileSync } from 'node:fs';
import { DEMO_WORK_TARGET, demoSnapshotRecords } from '../dist/shared/demo/corpus.js';

const dir = new URL('../demo/', import.meta.url);
writeFileSync(new URL('icx-work.snapshot.ndjson', dir), demoSnapshotRecords().map((r) => JSON.stringify(r)).join('\n') + '\n');
writeFileSync(new URL('icx-work.target.json', dir), JSON.stringify(DEMO_WORK_TARGET, null, 2) + '\n');
