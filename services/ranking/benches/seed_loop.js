// The loop the ranking replaces, as the original backend ran it: its
// DailyRanking.update, one ioredis ZADD of a random user's score per update,
// a fixed number in flight. The leaderboard bench runs it on the same Redis
// to put SubmitScore beside it.
//
// Run: NODE_PATH=DIR/node_modules node seed_loop.js HOST PORT [UPDATES] [USERS] [IN_FLIGHT] [BOARDS]
// (DIR from `npm install --prefix DIR ioredis`). BOARDS > 1 writes each update
// to that many boards in one pipeline, as the loop would to keep daily,
// weekly, monthly and all-time boards. Prints one JSON line.
const Redis = require('ioredis');

const [host, port] = [process.argv[2], Number(process.argv[3])];
const updates = Number(process.argv[4] || 200000);
const users = Number(process.argv[5] || 200000);
const inFlight = Number(process.argv[6] || 50);
const boards = Number(process.argv[7] || 1);
const day = new Date().toISOString().slice(0, 10);
const keys = Array.from({ length: boards }, (_, board) => `seed:ranking-${board}:${day}`);

async function main() {
  const redis = new Redis({ host, port, lazyConnect: true });
  await redis.connect();
  await redis.del(...keys);
  let next = 0;
  const worker = async () => {
    while (next < updates) {
      next += 1;
      const user = 'user' + Math.floor(Math.random() * users);
      const score = Math.floor(Math.random() * 1e6);
      if (boards === 1) {
        await redis.zadd(keys[0], score, user);
      } else {
        const pipeline = redis.pipeline();
        for (const key of keys) pipeline.zadd(key, score, user);
        await pipeline.exec();
      }
    }
  };
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: inFlight }, worker));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  console.log(JSON.stringify({ updates, boards, seconds, rate: updates / seconds }));
  await redis.del(...keys);
  redis.disconnect();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
