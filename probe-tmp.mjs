import { Redis } from 'ioredis';
const r = new Redis('redis://127.0.0.1:1/0', { lazyConnect: true, maxRetriesPerRequest: null });
r.on('error', (e) => console.log('error event', e.code, e.message));
const t = Date.now();
try { await r.connect(); console.log('connected'); } catch (e) { console.log('connect rejected', Date.now() - t, e.code, e.message); }
console.log('status', r.status);
r.disconnect();
try { new Redis('http://x'); } catch (e) { console.log('bad', e.message); }
