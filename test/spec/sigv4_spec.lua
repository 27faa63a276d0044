-- AWS Signature Version 4 with the values AWS documents (the IAM ListUsers walk-through, the
-- derived signing key example, and cases of the SigV4 test suite).
local sigv4 = require("resty.autoscale.actuators.aws.sigv4")
local hex = require("resty.autoscale.crypto.hex")
local sha = require("resty.autoscale.crypto.sha256")

local SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
local CREDS = {accessKeyId = "AKIDEXAMPLE", secretAccessKey = SECRET}
local AUG30 = 1440938160 -- 2015-08-30T12:36:00Z

local function opts(service, extra)
  local o = {region = "us-east-1", service = service, now = AUG30}
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

describe("sigv4 documented examples", function()
  it("derives the signing key of the AWS example (20120215, us-east-1, iam)", function()
    local key = assert(sigv4.signingKey(SECRET, "20120215", "us-east-1", "iam"))
    assert.are.equal("f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d", hex.toHex(key))
  end)

  it("signs the IAM ListUsers walk-through: canonical request, string to sign, signature", function()
    local signed, err = sigv4.sign({
      method = "GET", host = "iam.amazonaws.com", path = "/",
      query = {{"Version", "2010-05-08"}, {"Action", "ListUsers"}},
      headers = {["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"},
    }, CREDS, opts("iam"))
    assert.is_nil(err)
    assert.are.equal(table.concat({
      "GET", "/", "Action=ListUsers&Version=2010-05-08",
      "content-type:application/x-www-form-urlencoded; charset=utf-8",
      "host:iam.amazonaws.com",
      "x-amz-date:20150830T123600Z",
      "",
      "content-type;host;x-amz-date",
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    }, "\n"), signed.canonicalRequest)
    assert.are.equal("f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59", (sha.sha256Hex(signed.canonicalRequest)))
    assert.are.equal("AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\n"
      .. "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59", signed.stringToSign)
    assert.are.equal("5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7", signed.signature)
    assert.are.equal("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
      .. "SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
      signed.authorization)
    assert.are.equal("20150830T123600Z", signed.headers["x-amz-date"])
    assert.are.equal("iam.amazonaws.com", signed.headers.host)
  end)

  -- Test suite cases: host example.amazonaws.com, service "service", 20150830T123600Z.
  local suite = {
    {"get-vanilla", "GET", "/", {}, {}, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {"post-vanilla", "POST", "/", {}, {}, "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
    {"get-vanilla-query-order-key-case", "GET", "/", {{"Param2", "value2"}, {"Param1", "value1"}}, {},
      "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
    {"get-header-value-trim", "GET", "/", {}, {["My-Header1"] = " value1", ["My-Header2"] = ' "a   b   c"'},
      "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
  }
  for _, c in ipairs(suite) do
    it(c[1], function()
      local signed = assert(sigv4.sign({method = c[2], host = "example.amazonaws.com", path = c[3], query = c[4], headers = c[5]},
        CREDS, opts("service")))
      assert.are.equal(c[6], signed.signature)
    end)
  end

  it("signs a session token as x-amz-security-token", function()
    local token = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="
    local signed = assert(sigv4.sign({method = "GET", host = "example.amazonaws.com", path = "/", query = {}, headers = {}},
      {accessKeyId = "AKIDEXAMPLE", secretAccessKey = SECRET, sessionToken = token}, opts("service")))
    assert.are.equal("host;x-amz-date;x-amz-security-token", signed.signedHeaders)
    assert.are.equal("c8db8b9676d526f735dac5330f17623554c6cad1e2980d321903e9a3884c051b", signed.signature)
    assert.are.equal(token, signed.headers["x-amz-security-token"])
  end)
end)

describe("sigv4 canonical pieces", function()
  it("normalises and double-encodes the path", function()
    local cases = {
      {"/", "/"}, {"", ""}, {"//a//b/", "/a/b/"}, {"/a/./b/../c", "/a/c"}, {"/../a", "/a"},
      {"/a b/é", "/a%20b/%C3%A9"}, {"/a%20b", "/a%2520b"}, {"/~user/x-y_z.txt", "/~user/x-y_z.txt"},
      {"/!'()*", "/%21%27%28%29%2A"}, {"/a/..", "/"},
    }
    for _, c in ipairs(cases) do
      assert.are.equal(c[2], sigv4.canonicalPath(c[1], true), c[1])
    end
    assert.are.equal("/a b//./", sigv4.canonicalPath("/a b//./", false))
  end)

  it("sorts query pairs by encoded name then value, keeping repeated names", function()
    assert.are.equal("A=2&B=1&a=%20&a=1&a=b&a-b=x",
      sigv4.canonicalQuery({{"a", "b"}, {"a-b", "x"}, {"B", "1"}, {"a", "1"}, {"A", "2"}, {"a", " "}}))
    assert.are.equal("k=&q=%2B%26%3D%2F%E6%97%A5", sigv4.canonicalQuery({{"q", "+&=/日"}, {"k", ""}}))
    assert.are.equal("a=1", sigv4.canonicalQuery({{"X-Amz-Signature", "abc"}, {"a", "1"}}))
    assert.are.equal("", sigv4.canonicalQuery({}))
  end)

  it("trims header values and collapses inner blanks", function()
    assert.are.equal("a b c", sigv4.canonicalHeaderValue("  a \t b\r\n  c \t"))
    assert.are.equal("", sigv4.canonicalHeaderValue("   "))
  end)

  it("does not sign hop-by-hop headers but still sends them", function()
    local signed = assert(sigv4.sign({method = "GET", host = "h", path = "/", query = {},
      headers = {["User-Agent"] = "x", Connection = "close", ["Proxy-Foo"] = "1", ["X-Keep"] = "1"}}, CREDS, opts("s")))
    assert.are.equal("host;x-amz-date;x-keep", signed.signedHeaders)
    assert.are.equal("x", signed.headers["User-Agent"])
  end)

  it("replaces caller-set Authorization, X-Amz-Date and Host", function()
    local signed = assert(sigv4.sign({method = "GET", host = "real.example", path = "/", query = {},
      headers = {Authorization = "stale", ["X-Amz-Date"] = "19990101T000000Z", Host = "other"}}, CREDS, opts("s")))
    assert.is_nil(signed.headers.Authorization)
    assert.is_nil(signed.headers["X-Amz-Date"])
    assert.is_nil(signed.headers.Host)
    assert.are.equal("real.example", signed.headers.host)
    assert.are.equal("20150830T123600Z", signed.headers["x-amz-date"])
  end)

  it("hashes the body, or takes a caller-set x-amz-content-sha256", function()
    local req = {method = "POST", host = "h", path = "/", query = {}, headers = {}, body = "abc"}
    local signed = assert(sigv4.sign(req, CREDS, opts("s", {contentSha256Header = true})))
    local h = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert.are.equal(h, signed.headers["x-amz-content-sha256"])
    assert.are.equal(h, signed.canonicalRequest:match("([^\n]+)$"))
    req.headers = {["X-Amz-Content-Sha256"] = "UNSIGNED-PAYLOAD"}
    signed = assert(sigv4.sign(req, CREDS, opts("s")))
    assert.are.equal("UNSIGNED-PAYLOAD", signed.canonicalRequest:match("([^\n]+)$"))
    assert.is_nil(signed.headers["x-amz-content-sha256"])
  end)

  it("formats the date in UTC", function()
    assert.are.equal("20150830T123600Z", sigv4.amzDate(AUG30))
    assert.are.equal("20000101T000000Z", sigv4.amzDate(946684800.9))
  end)

  it("returns nil and a message for empty credentials or scope", function()
    local req = {method = "GET", host = "h", path = "/", query = {}, headers = {}}
    local s, err = sigv4.sign(req, {accessKeyId = "", secretAccessKey = "x"}, opts("s"))
    assert.is_nil(s)
    assert.are.equal("AWS credentials are empty", err)
    s, err = sigv4.sign(req, CREDS, {region = "", service = "s", now = AUG30})
    assert.is_nil(s)
    assert.are.equal("SigV4 needs a region and a service", err)
  end)

  it("signs a request spec from its URL", function()
    local spec = assert(sigv4.signSpec({method = "GET", url = "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08",
      headers = {["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"}}, CREDS, opts("iam")))
    assert.are.equal("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
      .. "SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
      spec.headers.authorization)
    local bad, err = sigv4.signSpec({method = "GET", url = "ftp://x/", headers = {}}, CREDS, opts("iam"))
    assert.is_nil(bad)
    assert.are.equal("expected an http:// or https:// URL", err)
  end)
end)
