import { MemoryStore } from './memory.js';
import { runStoreContract } from '../../testing/store-contract.js';

runStoreContract('memory', async () => {
  const store = new MemoryStore();
  return { store, cleanup: () => store.close() };
});
