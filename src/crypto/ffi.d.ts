// LuaJIT's FFI, as far as this project uses it (the shared declarations in src/ngx do not cover
// it). Library namespaces and cdata are untyped: each module that binds C functions narrows
// them at the call.

/** A C library namespace (`ffi.C` or what `ffi.load` returns): indexing it resolves a symbol. */
type FfiLibrary = any;
/** A C value: pointer, array or number box. */
type FfiCData = any;

/** @noSelf */
interface FfiModule {
  /** Declares C types and functions; throws on a syntax error or a conflicting redefinition. */
  cdef(decl: string): void;
  /** Loads a shared library; throws when it cannot be found. */
  load(name: string, global?: boolean): FfiLibrary;
  readonly C: FfiLibrary;
  /** Allocates a C value of the given type, garbage-collected with its last reference. */
  "new"(ctype: string, ...init: unknown[]): FfiCData;
  /** Copies `len` bytes at `ptr` into a Lua string (up to the first NUL when len is absent). */
  string(ptr: FfiCData, len?: number): string;
  sizeof(ctype: string | FfiCData): number | undefined;
  cast(ctype: string, value: unknown): FfiCData;
  typeof(ctype: string): FfiCData;
  errno(): number;
  readonly os: string;
  readonly arch: string;
}

declare module "ffi" {
  const ffi: FfiModule;
  export = ffi;
}
