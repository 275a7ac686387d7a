// Preloaded (--import) on worker threads (inference, picture preprocessing) when cnnx runs from its TypeScript
// sources (tests, tsx): registers tsx's loader on that thread, so the thread's module can be the .ts file itself.
// `--import tsx` would not do: before Node 22.22.3 / 24.11.1, tsx registers itself on the main thread only.
import { register } from 'tsx/esm/api';

register();
