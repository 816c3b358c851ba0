import { MemoryStorage } from '../../src/storage/memory.js';
import { describeStorageContract } from './contract.js';

describeStorageContract('memory', async () => new MemoryStorage('memory://contract'));
