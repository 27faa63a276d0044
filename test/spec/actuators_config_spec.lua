-- Actuator config validation (secret references only) and credential resolution with
-- injected getenv/readFile.
local cjson = require("cjson.safe")
local check = require("resty.autoscale.config.check")
local schema = require("resty.autoscale.actuators.schema")
local credentials = require("resty.autoscale.actuators.credentials")

local function validate(text)
  local p = check.Problems and setmetatable({list = {}}, {__index = check.Problems.prototype})
  local cfg = schema.validateActuator(p, "pools.api.scaling.actuator", assert(cjson.decode(text)))
  return cfg, p.list
end

describe("validateActuator", function()
  it("fills in the common defaults", function()
    local cfg, problems = validate('{"type":"webhook","url":"https://h.example/scale"}')
    assert.are.same({}, problems)
    assert.are.same({type = "webhook", url = "https://h.example/scale", timeout_ms = 2000, dry_run = false, resend_interval = 300,
      retry = {attempts = 3, base_ms = 200, max_ms = 5000}, breaker = {failures = 5, open_seconds = 30, max_open_seconds = 600}}, cfg)
  end)

  it("accepts each type with its own fields", function()
    local good = {
      '{"type":"kubernetes","name":"api"}',
      '{"type":"kubernetes","kind":"statefulset","namespace":"db","name":"pg","api_url":"https://k8s.example:6443","token":{"file":"/etc/k8s/token"},"ca_file":"/etc/k8s/ca.crt"}',
      '{"type":"aws_asg","group":"web","region":"us-east-1"}',
      '{"type":"aws_asg","group":"web","region":"eu-west-3","honor_cooldown":true,"credentials":{"access_key_id":{"env":"K"},"secret_access_key":{"file":"/s"},"session_token":{"env":"T"}}}',
      '{"type":"aws_asg","group":"web","region":"eu-west-3","credentials":{"file":"/root/.aws/credentials","profile":"scaler"}}',
      '{"type":"azure_vmss","subscription_id":"00000000-1111-2222-3333-444444444444","resource_group":"rg","name":"vmss","token":{"env":"AZURE_TOKEN"}}',
      '{"type":"gcp_mig","project":"my-proj","zone":"us-central1-a","name":"web","token":{"file":"/var/run/gcp-token"}}',
      '{"type":"gcp_mig","project":"my-proj","region":"us-central1","name":"web","token":{"env":"GCP_TOKEN"}}',
      '{"type":"webhook","url":"http://127.0.0.1:9000/scale","secret":{"env":"HOOK_SECRET"},"dry_run":true,"retry":{"attempts":5},"breaker":{"failures":2}}',
    }
    for _, text in ipairs(good) do
      local cfg, problems = validate(text)
      assert.are.same({}, problems, text)
      assert.is_table(cfg, text)
    end
    local azure = validate(good[6])
    assert.are.same({"2024-07-01", "https://management.azure.com"}, {azure.api_version, azure.endpoint})
    assert.are.equal("https://compute.googleapis.com", (validate(good[7])).endpoint)
    assert.are.equal("scaler", (validate(good[5])).credentials.profile)
  end)

  local P = "pools.api.scaling.actuator"
  local bad = {
    {'{"type":"webhook","url":"https://h/","secret":"hunter2"}',
      {P .. '.secret: secrets must not be written in the config: use {"env": "NAME"} or {"file": "/path"}'}},
    {'{"type":"azure_vmss","subscription_id":"00000000-1111-2222-3333-444444444444","resource_group":"rg","name":"v","token":{"env":"A","file":"/b"}}',
      {P .. '.token: expected exactly one of env or file, got an object'}},
    {'{"type":"gcp_mig","project":"p1","name":"m","token":{"file":"relative"}}',
      {P .. '.token.file: expected an absolute file path, got "relative"', P .. ": expected exactly one of zone (zonal group) or region (regional group)"}},
    {'{"type":"kubernetes","name":"API_bad"}',
      {P .. '.name: expected a lowercase DNS name (letters, digits, \'-\', \'.\'), got "API_bad"'}},
    {'{"type":"kubernetes","name":"api","api_url":"https://k:6443"}',
      {P .. ".token: required with api_url (outside the cluster there is no service account token)"}},
    {'{"type":"aws_asg","group":"g","region":"Europe"}',
      {P .. '.region: expected an AWS region such as us-east-1, got "Europe"'}},
    {'{"type":"aws_asg","group":"g","region":"us-east-1","credentials":{"access_key_id":{"env":"K"}}}',
      {P .. ".credentials: expected both access_key_id and secret_access_key"}},
    {'{"type":"webhook","url":"https://user:pw@h/"}',
      {P .. ".url: expected a URL without credentials (use a secret reference), got a URL with user info"}},
    {'{"type":"webhook","url":"https://h/","retry":{"base_ms":900,"max_ms":100},"breaker":{"open_seconds":0}}',
      {P .. ".retry.base_ms: must not exceed max_ms (100), got 900", P .. ".breaker.open_seconds: expected number 0.1-86400, got 0"}},
    {'{"type":"nomad"}', {P .. '.type: expected one of kubernetes, aws_asg, azure_vmss, gcp_mig, webhook, got "nomad"'}},
    {'{"type":"webhook","url":"https://h/","tokn":1}', {P .. ".tokn: unknown field (expected one of: type, timeout_ms, dry_run, resend_interval, retry, breaker, url, secret)"}},
  }
  for _, c in ipairs(bad) do
    it("refuses " .. c[1], function()
      local cfg, problems = validate(c[1])
      assert.is_nil(cfg)
      table.sort(problems)
      table.sort(c[2])
      assert.are.same(c[2], problems)
    end)
  end

  it("never echoes an inline secret", function()
    local _, problems = validate('{"type":"azure_vmss","subscription_id":"00000000-1111-2222-3333-444444444444","resource_group":"rg","name":"v","token":"eyJsecretvalue"}')
    assert.are.equal(1, #problems)
    assert.is_nil(problems[1]:find("eyJsecretvalue", 1, true))
  end)
end)

local function fakeIo(env, files)
  local reads = {}
  return {
    getenv = function(name) return env[name] end,
    readFile = function(path)
      reads[path] = (reads[path] or 0) + 1
      if files[path] == nil then return nil, path .. ": No such file or directory" end
      return files[path]
    end,
  }, reads
end

describe("resolveCredentials", function()
  local SA = "/var/run/secrets/kubernetes.io/serviceaccount/"

  it("uses the in-cluster service account and re-reads the token after the refresh interval", function()
    local files = {[SA .. "token"] = "token-v1\n", [SA .. "namespace"] = "shop"}
    local io, reads = fakeIo({KUBERNETES_SERVICE_HOST = "10.96.0.1", KUBERNETES_SERVICE_PORT = "443"}, files)
    local cache = credentials.newSecretCache(60)
    local cfg = {type = "kubernetes", kind = "deployment", name = "api"}
    local c = assert(credentials.resolveCredentials(cfg, io, cache, 1000))
    assert.are.same({bearerToken = "token-v1", apiUrl = "https://10.96.0.1:443", caFile = SA .. "ca.crt", namespace = "shop"}, c)
    files[SA .. "token"] = "token-v2"
    c = assert(credentials.resolveCredentials(cfg, io, cache, 1059))
    assert.are.equal("token-v1", c.bearerToken) -- cached
    assert.are.equal(1, reads[SA .. "token"])
    c = assert(credentials.resolveCredentials(cfg, io, cache, 1060))
    assert.are.equal("token-v2", c.bearerToken) -- rotated token picked up
    assert.are.equal(2, reads[SA .. "token"])
  end)

  it("brackets an IPv6 service host and explains a missing cluster", function()
    local io = fakeIo({KUBERNETES_SERVICE_HOST = "fd00::1"}, {[SA .. "token"] = "t", [SA .. "namespace"] = "n"})
    local c = assert(credentials.resolveCredentials({type = "kubernetes", name = "a"}, io, credentials.newSecretCache(), 0))
    assert.are.equal("https://[fd00::1]:443", c.apiUrl)
    local none, err = credentials.resolveCredentials({type = "kubernetes", name = "a"}, fakeIo({}, {}), credentials.newSecretCache(), 0)
    assert.is_nil(none)
    assert.matches("not running in a Kubernetes pod", err)
  end)

  it("reads AWS keys from the standard variables, with the optional session token", function()
    local io = fakeIo({AWS_ACCESS_KEY_ID = "AKID", AWS_SECRET_ACCESS_KEY = "SECRET", AWS_SESSION_TOKEN = "SESSION"}, {})
    local c = assert(credentials.resolveCredentials({type = "aws_asg", group = "g", region = "us-east-1"}, io, credentials.newSecretCache(), 0))
    assert.are.same({accessKeyId = "AKID", secretAccessKey = "SECRET", sessionToken = "SESSION"}, c.aws)
    local none, err = credentials.resolveCredentials({type = "aws_asg", group = "g", region = "us-east-1"}, fakeIo({AWS_ACCESS_KEY_ID = "AKID"}, {}), credentials.newSecretCache(), 0)
    assert.is_nil(none)
    assert.are.equal('environment variable AWS_SECRET_ACCESS_KEY is not set or empty (nginx passes it to workers only with "env AWS_SECRET_ACCESS_KEY;")', err)
  end)

  it("reads a profile of an AWS shared credentials file", function()
    local text = "[default]\naws_access_key_id = A1\naws_secret_access_key = S1\n\n# comment\n[profile scaler]\naws_access_key_id=A2\naws_secret_access_key = S2\naws_session_token = T2\n"
    local io = fakeIo({}, {["/creds"] = text})
    local cfg = {type = "aws_asg", group = "g", region = "us-east-1", credentials = {file = "/creds", profile = "scaler"}}
    local c = assert(credentials.resolveCredentials(cfg, io, credentials.newSecretCache(), 0))
    assert.are.same({accessKeyId = "A2", secretAccessKey = "S2", sessionToken = "T2"}, c.aws)
    cfg.credentials.profile = "default"
    c = assert(credentials.resolveCredentials(cfg, io, credentials.newSecretCache(), 0))
    assert.are.same({accessKeyId = "A1", secretAccessKey = "S1"}, c.aws)
    cfg.credentials.profile = "nope"
    local none, err = credentials.resolveCredentials(cfg, io, credentials.newSecretCache(), 0)
    assert.is_nil(none)
    assert.are.equal("AWS credentials file /creds: profile nope not found", err)
  end)

  it("resolves bearer tokens and webhook secrets, and names the source of a failure without a value", function()
    local io = fakeIo({AZ = "  az-token \n"}, {["/hook"] = "hook-secret\n"})
    local cache = credentials.newSecretCache()
    assert.are.same({bearerToken = "az-token"}, (credentials.resolveCredentials({type = "azure_vmss", token = {env = "AZ"}}, io, cache, 0)))
    assert.are.same({hmacSecret = "hook-secret"}, (credentials.resolveCredentials({type = "webhook", url = "u", secret = {file = "/hook"}}, io, cache, 0)))
    assert.are.same({}, (credentials.resolveCredentials({type = "webhook", url = "u"}, io, cache, 0)))
    local none, err = credentials.resolveCredentials({type = "gcp_mig", token = {file = "/missing"}}, io, cache, 0)
    assert.is_nil(none)
    assert.are.equal("cannot read secret file /missing: /missing: No such file or directory", err)
  end)

  it("lists the secret values for redaction", function()
    assert.are.same({"tok", "mac", "sk", "st"}, credentials.secretsOf({bearerToken = "tok", hmacSecret = "mac",
      aws = {accessKeyId = "AKID", secretAccessKey = "sk", sessionToken = "st"}}))
  end)
end)
