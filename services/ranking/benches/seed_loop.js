// The loop the ranking replaces, as the original backend ran it: its
// DailyRanking.update, one ioredis ZADD of a random user's score per update,
// a fixed number in flight. The leaderboard bench runs it on the same Redis
// to put SubmitScore beside it.
//
// Run: NODE_PATH=DIR/node_modules node seed_loop.js HOST PORT [UPDATES] [USERS] [IN_FLIGHT]
// (DIR from `npm install --prefix DIR ioredis`). Prints one JSON line.
const Redis = require('ioredis');

const [host, port] = [process.argv[2], Number(process.argv[3])];
const updates = Number(process.argv[4] || 200000);
const users = Number(process.argv[5] || 200000);
const inFlight = Number(process.argv[6] || 50);
const key = 'seed:daily-ranking:' + new Date().toISOString().slice(0, 10);

async function main() {
  const redis = new Redis({ host, port, lazyConnect: true });
  await redis.connect();
  await redis.del(key);
  let next = 0;
  const worker = async () => {
    while (next < updates) {
      next += 1;
      const user = 'user' + Math.floor(Math.random() * users);
      await redis.zadd(key, Math.floor(Math.random() * 1e6), user);
    }
  };
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: inFlight }, worker));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  console.log(JSON.stringify({ updates, seconds, rate: updates / seconds }));
  await redis.del(key);
  redis.disconnect();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
