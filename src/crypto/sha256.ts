// SHA-256 and HMAC-SHA256 through LuaJIT's FFI to libcrypto, the OpenSSL library nginx already
// links (Debian's runtime has no lua-resty-string). Inside nginx the symbols are found in the
// process (ffi.C); under plain luajit (busted, the CLI) the library is loaded by name.
// Functions return the raw 32-byte digest, or nil and a message; they never throw.
import * as ffi from "ffi";
import { toHex } from "./hex";

// Pointers are declared as void* so that these declarations cannot clash with another
// library's EVP_MD/ENGINE typedefs; each one is declared on its own and a clash (the same
// function already declared elsewhere in the process, e.g. by lua-resty-string) is ignored.
const DECLARATIONS = [
  "const void *EVP_sha256(void);",
  "int EVP_Digest(const void *data, size_t count, unsigned char *md, unsigned int *size, const void *type, void *impl);",
  "unsigned char *HMAC(const void *evp_md, const void *key, int key_len, const unsigned char *d, size_t n, unsigned char *md, unsigned int *md_len);",
];
for (const decl of DECLARATIONS) pcall(ffi.cdef, decl);

const LIBRARY_NAMES = ["crypto", "libcrypto.so.3", "libcrypto.so.1.1"];
const DIGEST_LENGTH = 32;

function symbol(lib: FfiLibrary, name: string): unknown {
  return lib[name];
}

function hasSymbols(lib: FfiLibrary): boolean {
  return pcall(symbol, lib, "EVP_Digest")[0] && pcall(symbol, lib, "HMAC")[0] && pcall(symbol, lib, "EVP_sha256")[0];
}

let crypto: FfiLibrary = undefined;
let loadError: string | undefined;
let sha256Md: FfiCData = undefined;
// One output buffer per worker: calls never yield, so they cannot interleave.
const digestBuf = ffi.new("unsigned char[?]", 64);
const lengthBuf = ffi.new("unsigned int[1]");

function resolve(): boolean {
  if (crypto !== undefined) return true;
  if (loadError !== undefined) return false;
  if (hasSymbols(ffi.C)) {
    crypto = ffi.C;
  } else {
    const tried: string[] = [];
    for (const name of LIBRARY_NAMES) {
      const [ok, lib] = pcall(ffi.load, name);
      if (ok && hasSymbols(lib)) {
        crypto = lib;
        break;
      }
      tried.push(name);
    }
    if (crypto === undefined) {
      loadError = `libcrypto not found (tried the process and ${tried.join(", ")})`;
      return false;
    }
  }
  sha256Md = crypto.EVP_sha256();
  // A NULL pointer compares equal to nil in LuaJIT.
  if (sha256Md === undefined) {
    crypto = undefined;
    loadError = "libcrypto has no SHA-256 (EVP_sha256 returned NULL)";
    return false;
  }
  return true;
}

/** The SHA-256 digest of `data` (32 raw bytes). */
export function sha256(data: string): LuaMultiReturn<[string | undefined, string | undefined]> {
  if (!resolve()) return $multi(undefined, loadError);
  if (crypto.EVP_Digest(data, data.length, digestBuf, lengthBuf, sha256Md, undefined) !== 1) {
    return $multi(undefined, "EVP_Digest failed");
  }
  return $multi(ffi.string(digestBuf, DIGEST_LENGTH), undefined);
}

/** HMAC-SHA256 of `data` under `key` (RFC 2104; 32 raw bytes). */
export function hmacSha256(key: string, data: string): LuaMultiReturn<[string | undefined, string | undefined]> {
  if (!resolve()) return $multi(undefined, loadError);
  const out = crypto.HMAC(sha256Md, key, key.length, data, data.length, digestBuf, lengthBuf);
  if (out === undefined) return $multi(undefined, "HMAC failed");
  return $multi(ffi.string(digestBuf, DIGEST_LENGTH), undefined);
}

/** Lowercase hex of the SHA-256 digest of `data`. */
export function sha256Hex(data: string): LuaMultiReturn<[string | undefined, string | undefined]> {
  const [d, err] = sha256(data);
  if (d === undefined) return $multi(undefined, err);
  return $multi(toHex(d), undefined);
}

/** Lowercase hex of HMAC-SHA256(key, data). */
export function hmacSha256Hex(key: string, data: string): LuaMultiReturn<[string | undefined, string | undefined]> {
  const [d, err] = hmacSha256(key, data);
  if (d === undefined) return $multi(undefined, err);
  return $multi(toHex(d), undefined);
}
