-- Adds one score for one user to several boards, atomically.
-- KEYS: the boards' sorted sets.
-- ARGV[1] user id, ARGV[2] score, ARGV[3] max score, ARGV[4] tick span,
-- then per board: policy ("best" or "sum"), tick, expire-at (unix seconds,
-- 0 for never), and 1 when the caller wants the user's rank on it, else 0.
-- Then, for a submission applied once only: one more key (the submission's
-- id) and one more argument (when the id is forgotten, unix seconds).
-- Returns, per board: the user's score after the update, and their 1-based
-- rank (0 when not wanted); for an id seen before, its first answer, and
-- nothing is written.
--
-- Submissions whose boards are all BEST do not come here (best.rs writes
-- them with native commands); a mix of BEST and SUM boards does.
-- Each board gets only the work the update needs: one ZSCORE; a ZADD only
-- when the score changes (a BEST that is not better changes nothing, so the
-- first to reach a score keeps the earlier tick); an EXPIREAT ... NX only
-- when the user is new to the board, which includes the write that creates
-- it (a board's expiry is set once, when it has none, as best.rs does); a
-- ZREVRANK only when the rank is wanted.
local user = ARGV[1]
local score = tonumber(ARGV[2])
local max_score = tonumber(ARGV[3])
local span = tonumber(ARGV[4])
local boards = math.floor((#ARGV - 4) / 4)
local once = KEYS[boards + 1]
if once then
  local seen = redis.call('GET', once)
  if seen then
    return cjson.decode(seen)
  end
end
local out = {}
for i = 1, boards do
  local key = KEYS[i]
  local base = 4 + (i - 1) * 4
  local policy = ARGV[base + 1]
  local new_score = score
  local write = true
  local tick = tonumber(ARGV[base + 2])
  local old = redis.call('ZSCORE', key, user)
  if old then
    old = tonumber(old)
    local old_score = math.floor(old / span)
    if policy == 'sum' then
      new_score = math.min(old_score + score, max_score)
      write = score > 0
    elseif score * span + (span - 1 - tick) <= old then
      -- BEST keeps the higher composite, as ZADD GT does: the higher
      -- score, and of equal scores the one reached first.
      new_score = old_score
      write = false
    end
  end
  if write then
    -- %.17g keeps every integer below 2^53 exact.
    redis.call('ZADD', key, string.format('%.17g', new_score * span + (span - 1 - tick)), user)
  end
  if not old then
    local expire_at = tonumber(ARGV[base + 3])
    if expire_at > 0 then
      redis.call('EXPIREAT', key, expire_at, 'NX')
    end
  end
  out[#out + 1] = new_score
  if ARGV[base + 4] == '1' then
    out[#out + 1] = redis.call('ZREVRANK', key, user) + 1
  else
    out[#out + 1] = 0
  end
end
if once then
  redis.call('SET', once, cjson.encode(out), 'EXAT', ARGV[#ARGV])
end
return out
