// Leadership, pure parts. Two levels:
// - among the workers of one nginx: a short lease in a shared dict (claimWorkerLease), so one
//   worker runs the control loop and another takes over soon after it dies;
// - among gateway instances: a lease in Redis (SET NX PX with a token, renewed by its holder,
//   released on shutdown). The token carries an epoch (INCR on every new lease, seeded with the
//   Redis clock in ms so it keeps growing after a restart without persistence) that serves as
//   the fencing token: signals carry it, and the holder checks it before each action.
// The Redis scripts are plain text here; the shell runs them with EVALSHA.

/** The subset of a shared dict the worker lease needs (a table-backed fake in specs). */
export interface LeaseDict {
  add(this: LeaseDict, key: string, value: number, exptime?: number): LuaMultiReturn<[boolean, string | undefined, boolean]>;
  get(this: LeaseDict, key: string): LuaMultiReturn<[ShdictValue | undefined, number | undefined]>;
  set(this: LeaseDict, key: string, value: number, exptime?: number): LuaMultiReturn<[boolean, string | undefined, boolean]>;
}

/**
 * Claims or renews the worker lease for `me` (a worker pid). True when `me` holds it now.
 * The holder renews well before `ttl` runs out; when it dies the key expires and the next
 * claim of another worker wins.
 */
export function claimWorkerLease(dict: LeaseDict, key: string, me: number, ttl: number): boolean {
  const [added] = dict.add(key, me, ttl);
  if (added) return true;
  if (dict.get(key)[0] !== me) return false;
  dict.set(key, me, ttl);
  return true;
}

/**
 * KEYS[1] lease key, KEYS[2] epoch counter; ARGV[1] the caller's token ("" if none), ARGV[2]
 * lease ms, ARGV[3] instance id. Returns {1, token} renewed, {2, token} newly acquired, or
 * {0, holder's token, its remaining ms} when another instance holds it.
 */
export const ACQUIRE_SCRIPT = `local v = redis.call('GET', KEYS[1])
if v and v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, v}
end
if v then return {0, v, redis.call('PTTL', KEYS[1])} end
if redis.call('EXISTS', KEYS[2]) == 0 then
  -- A Redis restarted without persistence forgot the counter: start above every earlier epoch.
  local t = redis.call('TIME')
  redis.call('SET', KEYS[2], string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)))
end
local epoch = redis.call('INCR', KEYS[2])
local token = ARGV[3] .. '@' .. epoch
if redis.call('SET', KEYS[1], token, 'NX', 'PX', ARGV[2]) then return {2, token} end
return {0, redis.call('GET', KEYS[1]) or ''}`;

/** KEYS[1] lease key, ARGV[1] token: deletes the lease only when the caller still holds it. */
export const RELEASE_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/** The instance id in a lease token "<instance>@<epoch>". */
export function tokenInstance(token: string): string | undefined {
  return string.match(token, "^(.*)@%d+$")[0];
}

/** The epoch (fencing number) in a lease token, or undefined. */
export function tokenEpoch(token: string): number | undefined {
  return tonumber(string.match(token, "@(%d+)$")[0]);
}

export interface LeaderState {
  /** Our token while we hold (or believe we hold) the lease. */
  token?: string;
  /** Local time until which we may act without a renewal. */
  validUntil: number;
  /** Who holds the lease, as last seen. */
  holder?: string;
  /** Time of the last successful talk with Redis (0: never). */
  lastContact: number;
}

export function newLeaderState(): LeaderState {
  return { validUntil: 0, lastContact: 0 };
}

/**
 * Share of the lease a holder uses before it stops acting without a renewal: it stops before
 * the key can expire in Redis (the key's time starts when Redis ran the script, after `sentAt`),
 * so a standby can never act while the former holder still does.
 */
export const LEASE_USE = 0.8;

/**
 * Applies the reply of ACQUIRE_SCRIPT sent at local time `sentAt`. `status` undefined means
 * Redis did not answer: the state keeps its validity (it runs out on its own).
 */
export function onAcquireReply(s: LeaderState, status: number | undefined, token: string | undefined, sentAt: number, leaseMs: number): void {
  if (status === undefined) return;
  s.lastContact = sentAt;
  if (status === 1 || status === 2) {
    s.token = token;
    s.holder = token;
    s.validUntil = sentAt + (leaseMs / 1000) * LEASE_USE;
    return;
  }
  s.token = undefined;
  s.holder = token;
  s.validUntil = 0;
}

/** True while the lease is ours and recent enough to act on. */
export function isLeader(s: LeaderState, now: number): boolean {
  return s.token !== undefined && now < s.validUntil;
}

export type ControlMode = "single" | "leader" | "standby" | "degraded";

export interface ModeInput {
  clustered: boolean;
  redisUp: boolean;
  leader: boolean;
  fallback: "hold" | "local";
  /** This instance held the lease when Redis was last reachable. */
  wasLeader: boolean;
}

/**
 * What this instance does in this interval: act (evaluate and signal) or not, and why.
 * Redis down: "hold" never acts; "local" lets only the instance that was leader go on, on its
 * own numbers (a standby never starts acting without Redis: no two actors).
 */
export function controlMode(m: ModeInput): LuaMultiReturn<[ControlMode, boolean, string]> {
  if (!m.clustered) return $multi("single", true, "no cluster section: this instance decides alone");
  if (m.redisUp) {
    if (m.leader) return $multi("leader", true, "holds the leader lease");
    return $multi("standby", false, "another instance holds the leader lease");
  }
  if (m.fallback === "local" && m.wasLeader) return $multi("degraded", true, "redis unreachable: former leader decides on local numbers (fallback local)");
  if (m.fallback === "local") return $multi("degraded", false, "redis unreachable: standby holds (only the former leader decides locally)");
  return $multi("degraded", false, "redis unreachable: holding the current replica count (fallback hold)");
}

export type FenceCheck = "none" | "lease" | "stop";

/**
 * What an action checks before each try, from the loop's mode at that moment (an action spans a
 * drain and retries, so the mode may have changed since its decision): "lease" (the Redis lease
 * must still carry our token), "none" (no cluster, or the local fallback where no fencing is
 * possible) or "stop" (this instance no longer acts: a standby, or holding while Redis is down).
 */
export function fenceCheck(clustered: boolean, mode: ControlMode, acting: boolean): FenceCheck {
  if (!clustered) return "none";
  if (!acting) return "stop";
  return mode === "leader" ? "lease" : "none";
}

/**
 * When to talk to Redis next: after `interval`, except that a standby that saw the holder's lease
 * ending sooner tries again right when it ends (a dead leader is replaced at its lease's end,
 * not up to one interval later).
 */
export function nextLeaseTry(now: number, interval: number, status: number | undefined, remainingMs: number | undefined): number {
  if (status === 0 && remainingMs !== undefined && remainingMs >= 0 && remainingMs / 1000 < interval) return now + remainingMs / 1000;
  return now + interval;
}
