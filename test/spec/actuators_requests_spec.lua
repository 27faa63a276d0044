-- Request shapes and response parsing of every actuator, per the public API references.
local cjson = require("cjson.safe")
local registry = require("resty.autoscale.actuators.registry")
local k8s = require("resty.autoscale.actuators.kubernetes")
local aws = require("resty.autoscale.actuators.aws.autoscaling")
local sigv4 = require("resty.autoscale.actuators.aws.sigv4")
local azure = require("resty.autoscale.actuators.azure")
local gcp = require("resty.autoscale.actuators.gcp")
local webhook = require("resty.autoscale.actuators.webhook")
local sha = require("resty.autoscale.crypto.sha256")
local url = require("resty.autoscale.net.url")

local NOW = 1700000000
local DECISION = {pool = "api", id = "api-1700000000000-7", reason = "rps 120 > target 50", current = 2}
local NOHEADERS = {}

describe("url helpers", function()
  it("percent-encodes per RFC 3986", function()
    assert.are.equal("a%20b%2Fc~d.e_f-g%C3%A9%2B%26", url.encodeComponent("a b/c~d.e_f-gé+&"))
    assert.are.equal("/a%20b/c", url.encodePath("/a b/c"))
    assert.are.equal("a b+%zz", url.decodePercent("a%20b+%zz"))
  end)
  it("parses URLs and queries", function()
    local u = assert(url.parseUrl("https://h.example:8443/p/a%20b?x=1&y=a%26b&z#frag"))
    assert.are.same({scheme = "https", host = "h.example", port = 8443, authority = "h.example:8443", path = "/p/a%20b",
      query = {{"x", "1"}, {"y", "a&b"}, {"z", ""}}, rawQuery = "x=1&y=a%26b&z"}, u)
    u = assert(url.parseUrl("http://[::1]"))
    assert.are.same({"::1", 80, "[::1]", "/"}, {u.host, u.port, u.authority, u.path})
    assert.are.equal("https://autoscaling.us-east-1.amazonaws.com", assert(url.parseUrl("https://autoscaling.us-east-1.amazonaws.com:443/")).scheme .. "://" .. assert(url.parseUrl("https://autoscaling.us-east-1.amazonaws.com:443/")).authority)
    local bad, err = url.parseUrl("https://user:pw@h/")
    assert.is_nil(bad)
    assert.are.equal("credentials in the URL are not supported", err)
  end)
end)

describe("registry", function()
  it("gives the module of each type, all with the same functions", function()
    for _, t in ipairs({"kubernetes", "aws_asg", "azure_vmss", "gcp_mig", "webhook"}) do
      local a = assert(registry.actuatorFor({type = t}))
      assert.are.equal(t, a.kind)
      for _, f in ipairs({"describeCurrent", "parseCurrent", "buildSet", "parseSet"}) do
        assert.are.equal("function", type(a[f]), t .. "." .. f)
      end
    end
    local a, err = registry.actuatorFor({type = "nomad"})
    assert.is_nil(a)
    assert.are.equal("unknown actuator type nomad", err)
  end)
end)

describe("kubernetes", function()
  local cfg = {type = "kubernetes", kind = "deployment", namespace = "shop", name = "api"}
  local creds = {bearerToken = "tok123456", apiUrl = "https://10.0.0.1:443/", caFile = "/ca.crt"}

  it("GETs and PATCHes the scale subresource with a merge patch", function()
    local get = assert(k8s.describeCurrent(cfg, creds, NOW))
    assert.are.same({method = "GET", url = "https://10.0.0.1:443/apis/apps/v1/namespaces/shop/deployments/api/scale",
      headers = {Authorization = "Bearer tok123456", Accept = "application/json"}, caFile = "/ca.crt"}, get)
    local patch = assert(k8s.buildSet(cfg, creds, 7, NOW, DECISION))
    assert.are.equal("PATCH", patch.method)
    assert.are.equal(get.url, patch.url)
    assert.are.equal("application/merge-patch+json", patch.headers["Content-Type"])
    assert.are.equal('{"spec":{"replicas":7}}', patch.body)
  end)

  it("addresses statefulsets and takes the namespace from the service account", function()
    local spec = assert(k8s.buildSet({type = "kubernetes", kind = "statefulset", name = "db"},
      {bearerToken = "t", apiUrl = "https://k", namespace = "prod"}, 0, NOW, DECISION))
    assert.are.equal("https://k/apis/apps/v1/namespaces/prod/statefulsets/db/scale", spec.url)
    assert.are.equal('{"spec":{"replicas":0}}', spec.body)
  end)

  it("refuses to build without a token", function()
    local spec, err = k8s.describeCurrent(cfg, {apiUrl = "https://k"}, NOW)
    assert.is_nil(spec)
    assert.are.equal("no Kubernetes bearer token", err)
  end)

  it("reads spec.replicas of the Scale (absent means 0)", function()
    local body = '{"kind":"Scale","apiVersion":"autoscaling/v1","spec":{"replicas":3},"status":{"replicas":2}}'
    assert.are.same({3, nil, false}, {k8s.parseCurrent(200, NOHEADERS, body)})
    assert.are.same({0, nil, false}, {k8s.parseCurrent(200, NOHEADERS, '{"kind":"Scale","spec":{},"status":{"replicas":0}}')})
    assert.are.same({true, nil, false}, {k8s.parseSet(200, NOHEADERS, body)})
  end)

  it("explains API errors and says whether a retry may help", function()
    local status = '{"kind":"Status","status":"Failure","message":"deployments.apps \\"api\\" not found","reason":"NotFound","code":404}'
    assert.are.same({nil, 'Kubernetes API: HTTP 404 NotFound: deployments.apps "api" not found', false}, {k8s.parseCurrent(404, NOHEADERS, status)})
    local _, err, retry = k8s.parseSet(503, NOHEADERS, "upstream connect error")
    assert.are.equal("Kubernetes API: HTTP 503: upstream connect error", err)
    assert.is_true(retry)
    _, err, retry = k8s.parseCurrent(200, NOHEADERS, "{not json")
    assert.matches("^Kubernetes API: response is not valid JSON", err)
    assert.is_false(retry)
    _, err = k8s.parseCurrent(200, NOHEADERS, '{"kind":"Deployment"}')
    assert.are.equal("Kubernetes API: the response is not a Scale object", err)
  end)
end)

describe("aws auto scaling", function()
  local cfg = {type = "aws_asg", group = "web asg", region = "eu-west-3", honor_cooldown = true}
  local creds = {aws = {accessKeyId = "AKIDEXAMPLE", secretAccessKey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", sessionToken = "sess"}}

  it("POSTs a signed SetDesiredCapacity form", function()
    local spec = assert(aws.buildSet(cfg, creds, 5, NOW, DECISION))
    assert.are.equal("POST", spec.method)
    assert.are.equal("https://autoscaling.eu-west-3.amazonaws.com/", spec.url)
    assert.are.equal("Action=SetDesiredCapacity&Version=2011-01-01&AutoScalingGroupName=web%20asg&DesiredCapacity=5&HonorCooldown=true", spec.body)
    assert.are.equal("application/x-www-form-urlencoded; charset=utf-8", spec.headers["Content-Type"])
    assert.are.equal("autoscaling.eu-west-3.amazonaws.com", spec.headers.host)
    assert.are.equal("20231114T221320Z", spec.headers["x-amz-date"])
    assert.are.equal("sess", spec.headers["x-amz-security-token"])
    assert.matches("^AWS4%-HMAC%-SHA256 Credential=AKIDEXAMPLE/20231114/eu%-west%-3/autoscaling/aws4_request, "
      .. "SignedHeaders=content%-type;host;x%-amz%-date;x%-amz%-security%-token, Signature=%x+$", spec.headers.authorization)
    -- The signature is the signer's over exactly this request.
    local again = assert(sigv4.sign({method = "POST", host = spec.headers.host, path = "/", query = {},
      headers = {["Content-Type"] = spec.headers["Content-Type"]}, body = spec.body}, creds.aws,
      {region = "eu-west-3", service = "autoscaling", now = NOW}))
    assert.are.equal(again.authorization, spec.headers.authorization)
  end)

  it("describes the group and uses the China partition and endpoint overrides", function()
    local spec = assert(aws.describeCurrent({type = "aws_asg", group = "g", region = "cn-north-1", honor_cooldown = false}, creds, NOW))
    assert.are.equal("https://autoscaling.cn-north-1.amazonaws.com.cn/", spec.url)
    assert.are.equal("Action=DescribeAutoScalingGroups&Version=2011-01-01&AutoScalingGroupNames.member.1=g&IncludeInstances=false", spec.body)
    spec = assert(aws.describeCurrent({type = "aws_asg", group = "g", region = "us-east-1", endpoint = "http://127.0.0.1:9000/", honor_cooldown = false}, creds, NOW))
    assert.are.equal("127.0.0.1:9000", spec.headers.host)
    local none, err = aws.buildSet(cfg, {}, 1, NOW, DECISION)
    assert.is_nil(none)
    assert.are.equal("no AWS credentials", err)
  end)

  local DESCRIBE = [[<DescribeAutoScalingGroupsResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">
  <DescribeAutoScalingGroupsResult><AutoScalingGroups><member>
    <AutoScalingGroupName>web asg</AutoScalingGroupName><MinSize>1</MinSize><MaxSize>10</MaxSize>
    <DesiredCapacityType>units</DesiredCapacityType><DesiredCapacity>4</DesiredCapacity>
  </member></AutoScalingGroups></DescribeAutoScalingGroupsResult>
  <ResponseMetadata><RequestId>abc</RequestId></ResponseMetadata></DescribeAutoScalingGroupsResponse>]]

  it("parses DesiredCapacity", function()
    assert.are.same({4, nil, false}, {aws.parseCurrent(200, NOHEADERS, DESCRIBE)})
    local empty = [[<DescribeAutoScalingGroupsResponse><DescribeAutoScalingGroupsResult><AutoScalingGroups/></DescribeAutoScalingGroupsResult></DescribeAutoScalingGroupsResponse>]]
    assert.are.same({nil, "AWS: Auto Scaling group not found (DescribeAutoScalingGroups returned no group)", false}, {aws.parseCurrent(200, NOHEADERS, empty)})
    assert.are.same({true, nil, false}, {aws.parseSet(200, NOHEADERS, "<SetDesiredCapacityResponse><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></SetDesiredCapacityResponse>")})
  end)

  it("turns XML error responses into clear messages", function()
    local function errorBody(code, message)
      return '<ErrorResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><Error><Type>Sender</Type><Code>'
        .. code .. "</Code><Message>" .. message .. "</Message></Error><RequestId>req-1</RequestId></ErrorResponse>"
    end
    local cases = {
      {400, "ValidationError", "New SetDesiredCapacity value 50 is above max value 10 for the AutoScalingGroup.",
        "AWS ValidationError: New SetDesiredCapacity value 50 is above max value 10 for the AutoScalingGroup. (HTTP 400, request id req-1)", false},
      {400, "ScalingActivityInProgress", "Scaling activity is in progress &amp; blocks &quot;HonorCooldown&quot;",
        'AWS ScalingActivityInProgress: Scaling activity is in progress & blocks "HonorCooldown" (HTTP 400, request id req-1); HonorCooldown is on and the group is cooling down or scaling', false},
      {400, "Throttling", "Rate exceeded", "AWS Throttling: Rate exceeded (HTTP 400, request id req-1)", true},
      {403, "SignatureDoesNotMatch", "The request signature we calculated does not match",
        "AWS SignatureDoesNotMatch: The request signature we calculated does not match (HTTP 403, request id req-1); check the credentials and the clock", false},
      {500, "InternalFailure", "oops", "AWS InternalFailure: oops (HTTP 500, request id req-1)", true},
    }
    for _, c in ipairs(cases) do
      assert.are.same({nil, c[4], c[5]}, {aws.parseSet(c[1], NOHEADERS, errorBody(c[2], c[3]))})
    end
    assert.are.same({nil, "AWS: HTTP 502: <html> bad gateway </html>", true}, {aws.parseCurrent(502, NOHEADERS, "<html>\n bad gateway </html>")})
  end)
end)

describe("azure vm scale sets", function()
  local cfg = {type = "azure_vmss", subscription_id = "00000000-1111-2222-3333-444444444444", resource_group = "rg-web",
    name = "vmss1", api_version = "2024-07-01", endpoint = "https://management.azure.com"}
  local creds = {bearerToken = "eyAzure"}
  local URL = "https://management.azure.com/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg-web"
    .. "/providers/Microsoft.Compute/virtualMachineScaleSets/vmss1?api-version=2024-07-01"

  it("PATCHes sku.capacity and GETs the scale set", function()
    local patch = assert(azure.buildSet(cfg, creds, 6, NOW, DECISION))
    assert.are.same({method = "PATCH", url = URL, body = '{"sku":{"capacity":6}}',
      headers = {Authorization = "Bearer eyAzure", Accept = "application/json", ["Content-Type"] = "application/json"}}, patch)
    local get = assert(azure.describeCurrent(cfg, creds, NOW))
    assert.are.equal("GET", get.method)
    assert.are.equal(URL, get.url)
  end)

  it("parses capacity, accepts 200 and 202, explains errors", function()
    assert.are.same({3, nil, false}, {azure.parseCurrent(200, NOHEADERS, '{"name":"vmss1","sku":{"name":"Standard_D2s_v3","tier":"Standard","capacity":3}}')})
    assert.are.same({true, nil, false}, {azure.parseSet(202, NOHEADERS, "")})
    assert.are.same({true, nil, false}, {azure.parseSet(200, NOHEADERS, "{}")})
    assert.are.same({nil, "Azure: HTTP 403 AuthorizationFailed: The client does not have authorization", false},
      {azure.parseSet(403, NOHEADERS, '{"error":{"code":"AuthorizationFailed","message":"The client does not have authorization"}}')})
    assert.are.same({nil, "Azure: HTTP 429 TooManyRequests: slow down", true},
      {azure.parseSet(429, NOHEADERS, '{"error":{"code":"TooManyRequests","message":"slow down"}}')})
    assert.are.same({nil, "Azure: sku.capacity missing from the scale set", false}, {azure.parseCurrent(200, NOHEADERS, '{"sku":{}}')})
  end)
end)

describe("gcp managed instance groups", function()
  local cfg = {type = "gcp_mig", project = "my-proj", zone = "us-central1-a", name = "web-mig", endpoint = "https://compute.googleapis.com"}
  local creds = {bearerToken = "ya29.gcp"}
  local BASE = "https://compute.googleapis.com/compute/v1/projects/my-proj/zones/us-central1-a/instanceGroupManagers/web-mig"

  it("POSTs resize with size and a stable requestId, GETs the group", function()
    local spec = assert(gcp.buildSet(cfg, creds, 8, NOW, DECISION))
    assert.are.equal("POST", spec.method)
    local id = assert(gcp.requestId("api", 8, DECISION.id))
    assert.are.equal(BASE .. "/resize?size=8&requestId=" .. id, spec.url)
    assert.matches("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$", id)
    assert.are.equal(id, (gcp.requestId("api", 8, DECISION.id)))
    assert.are_not.equal(id, (gcp.requestId("api", 9, DECISION.id)))
    assert.are.equal("", spec.body)
    assert.are.equal("Bearer ya29.gcp", spec.headers.Authorization)
    assert.are.equal(BASE, assert(gcp.describeCurrent(cfg, creds, NOW)).url)
  end)

  it("addresses regional groups", function()
    local spec = assert(gcp.describeCurrent({type = "gcp_mig", project = "p", region = "europe-west1", name = "m", endpoint = "https://compute.googleapis.com/"}, creds, NOW))
    assert.are.equal("https://compute.googleapis.com/compute/v1/projects/p/regions/europe-west1/instanceGroupManagers/m", spec.url)
  end)

  it("parses targetSize, operations and errors", function()
    assert.are.same({5, nil, false}, {gcp.parseCurrent(200, NOHEADERS, '{"kind":"compute#instanceGroupManager","targetSize":5}')})
    assert.are.same({true, nil, false}, {gcp.parseSet(200, NOHEADERS, '{"kind":"compute#operation","status":"RUNNING"}')})
    assert.are.same({nil, "GCP operation failed: QUOTA_EXCEEDED: Quota CPUS exceeded", false},
      {gcp.parseSet(200, NOHEADERS, '{"kind":"compute#operation","error":{"errors":[{"code":"QUOTA_EXCEEDED","message":"Quota CPUS exceeded"}]}}')})
    assert.are.same({nil, "GCP: HTTP 403 PERMISSION_DENIED: Required 'compute.instanceGroupManagers.update' permission", false},
      {gcp.parseSet(403, NOHEADERS, [[{"error":{"code":403,"message":"Required 'compute.instanceGroupManagers.update' permission","status":"PERMISSION_DENIED"}}]])})
    local _, _, retry = gcp.parseCurrent(503, NOHEADERS, "")
    assert.is_true(retry)
  end)
end)

describe("webhook", function()
  local cfg = {type = "webhook", url = "https://hooks.example/scale", secret = {env = "HOOK_SECRET"}}
  local creds = {hmacSecret = "whsec_test_123"}

  it("POSTs the decision as JSON with a fixed field order", function()
    local spec = assert(webhook.buildSet(cfg, creds, 5, NOW + 0.75, DECISION))
    assert.are.equal("POST", spec.method)
    assert.are.equal("https://hooks.example/scale", spec.url)
    assert.are.equal('{"pool":"api","current":2,"desired":5,"reason":"rps 120 > target 50","decision_id":"api-1700000000000-7","timestamp":1700000000}', spec.body)
    local doc = assert(cjson.decode(spec.body))
    assert.are.same({pool = "api", current = 2, desired = 5, reason = "rps 120 > target 50", decision_id = "api-1700000000000-7", timestamp = NOW}, doc)
    assert.are.equal("application/json", spec.headers["Content-Type"])
  end)

  it("signs timestamp.body with HMAC-SHA256 and derives the idempotency key", function()
    local spec = assert(webhook.buildSet(cfg, creds, 5, NOW, DECISION))
    local expected = assert(sha.hmacSha256Hex("whsec_test_123", "1700000000." .. spec.body))
    assert.are.equal("t=1700000000,v1=" .. expected, spec.headers["X-Autoscale-Signature"])
    assert.are.equal(assert(sha.sha256Hex("api\n5\napi-1700000000000-7")), spec.headers["Idempotency-Key"])
    -- A retry of the same decision keeps the key; another value or decision changes it.
    local retry = assert(webhook.buildSet(cfg, creds, 5, NOW + 3, DECISION))
    assert.are.equal(spec.headers["Idempotency-Key"], retry.headers["Idempotency-Key"])
    assert.are_not.equal(spec.headers["X-Autoscale-Signature"], retry.headers["X-Autoscale-Signature"])
    local other = assert(webhook.buildSet(cfg, creds, 6, NOW, DECISION))
    assert.are_not.equal(spec.headers["Idempotency-Key"], other.headers["Idempotency-Key"])
  end)

  it("escapes JSON, sends null for an unknown current, and signs nothing without a secret", function()
    local spec = assert(webhook.buildSet({type = "webhook", url = "http://h/"}, {}, 1, NOW, {pool = "p", id = "d", reason = 'q"\n'}))
    assert.are.equal('{"pool":"p","current":null,"desired":1,"reason":"q\\"\\n","decision_id":"d","timestamp":1700000000}', spec.body)
    assert.is_nil(spec.headers["X-Autoscale-Signature"])
    local none, err = webhook.buildSet(cfg, {}, 1, NOW, DECISION)
    assert.is_nil(none)
    assert.are.equal("webhook secret is configured but was not resolved", err)
  end)

  it("accepts any 2xx and cannot read the current value", function()
    assert.are.same({true, nil, false}, {webhook.parseSet(204, NOHEADERS, "")})
    assert.are.same({nil, "webhook: HTTP 500: boom", true}, {webhook.parseSet(500, NOHEADERS, "boom")})
    assert.are.same({nil, "webhook: HTTP 400: bad", false}, {webhook.parseSet(400, NOHEADERS, "bad")})
    assert.is_false(webhook.readsCurrent)
    local spec, err = webhook.describeCurrent(cfg, creds, NOW)
    assert.is_nil(spec)
    assert.are.equal("the webhook actuator cannot read the current replica count", err)
  end)
end)
