// tsc does not copy non-TypeScript assets; the migration runner reads its .sql
// files next to its own compiled module, so mirror them into dist/.
import { cpSync, mkdirSync } from 'node:fs';

const from = new URL('../shared/db/migrations/', import.meta.url);
const to = new URL('../dist/shared/db/migrations/', import.meta.url);
mkdirSync(to, { recursive: true });
cpSync(from, to, { recursive: true });
