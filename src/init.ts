// `require("resty.autoscale")`: the functions nginx.conf calls, one per phase.
export { init, init_worker } from "./gateway/boot";
export { access } from "./gateway/access_phase";
export { log } from "./gateway/log_phase";
export { balance } from "./gateway/balancing";
export { admin } from "./gateway/admin";
