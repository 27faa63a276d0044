-- SHA-256 (FIPS 180-2 examples), HMAC-SHA256 (RFC 4231 test cases 1-7) and hex encoding,
-- through the FFI binding to libcrypto.
local crypto = require("resty.autoscale.crypto.sha256")
local hex = require("resty.autoscale.crypto.hex")

local function unhex(h)
  return (assert(hex.fromHex(h)))
end

describe("sha256", function()
  local cases = {
    {"empty string", "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    {"abc", "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    {"two-block message", "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    {"896-bit message",
      "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
      "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    {"one million 'a'", string.rep("a", 1000000), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
    -- Not a published vector (computed with Node's crypto): the length must not stop at the NUL.
    {"embedded NUL bytes", "a\0b", "59b271ae1bbcb1d31d41929817f4b16fb439eb4f31520b5ad1d5ce98920a7138"},
  }
  for _, c in ipairs(cases) do
    it(c[1], function()
      local digest, err = crypto.sha256(c[2])
      assert.is_nil(err)
      assert.are.equal(32, #digest)
      assert.are.equal(c[3], hex.toHex(digest))
      assert.are.equal(c[3], (crypto.sha256Hex(c[2])))
    end)
  end
end)

describe("hmac-sha256 (RFC 4231)", function()
  local cases = {
    {1, string.rep("\11", 20), "Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
    {2, "Jefe", "what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
    {3, string.rep("\170", 20), string.rep("\221", 50), "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
    {4, unhex("0102030405060708090a0b0c0d0e0f10111213141516171819"), string.rep("\205", 50),
      "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
    {5, string.rep("\12", 20), "Test With Truncation", "a3b6167473100ee06e0c796c2955552b"},
    {6, string.rep("\170", 131), "Test Using Larger Than Block-Size Key - Hash Key First",
      "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
    {7, string.rep("\170", 131),
      "This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.",
      "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
  }
  for _, c in ipairs(cases) do
    it("test case " .. c[1], function()
      local mac, err = crypto.hmacSha256(c[2], c[3])
      assert.is_nil(err)
      assert.are.equal(32, #mac)
      -- Case 5 publishes only the first 128 bits.
      assert.are.equal(c[4], hex.toHex(mac):sub(1, #c[4]))
      assert.are.equal(c[4], (crypto.hmacSha256Hex(c[2], c[3])):sub(1, #c[4]))
    end)
  end

  it("accepts an empty key and empty data", function()
    -- HMAC-SHA256("", "") is a well-known constant.
    assert.are.equal("b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad", (crypto.hmacSha256Hex("", "")))
  end)

  it("chains as SigV4 does (a binary key from a previous HMAC)", function()
    local k1 = assert(crypto.hmacSha256("AWS4secret", "20150830"))
    local k2 = assert(crypto.hmacSha256(k1, "us-east-1"))
    assert.are.equal(32, #k2)
    assert.are_not.equal(k1, k2)
  end)
end)

describe("hex", function()
  it("encodes every byte value in lowercase", function()
    local all = {}
    for i = 0, 255 do all[#all + 1] = string.char(i) end
    local h = hex.toHex(table.concat(all))
    assert.are.equal(512, #h)
    assert.are.equal("000102", h:sub(1, 6))
    assert.are.equal("7f80", h:sub(255, 258))
    assert.are.equal("fdfeff", h:sub(-6))
    assert.are.equal(table.concat(all), (hex.fromHex(h)))
  end)

  it("decodes either case", function()
    assert.are.equal("\222\173\190\239", (hex.fromHex("DeAdBeEf")))
    assert.are.equal("", (hex.fromHex("")))
  end)

  it("refuses odd lengths and non-hex characters", function()
    local v, err = hex.fromHex("abc")
    assert.is_nil(v)
    assert.are.equal("hex string of odd length 3", err)
    v, err = hex.fromHex("zz")
    assert.is_nil(v)
    assert.are.equal("hex string with a non-hex character", err)
  end)
end)
