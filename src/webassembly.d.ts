// WebAssembly is a global of Node.js, declared by lib.dom, which this TypeScript setup does not load: the
// little lifeboat uses of it (gearScan.ts, rowHash.ts) is declared here.
declare namespace WebAssembly {
  interface Module {
    readonly kind?: 'wasm-module';
  }
  interface Memory {
    readonly buffer: ArrayBuffer | SharedArrayBuffer;
    grow(pages: number): number;
  }
  interface Global {
    value: number;
  }
  interface Instance {
    readonly exports: unknown;
  }
}
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => WebAssembly.Module;
  Instance: new (
    module: WebAssembly.Module,
    imports?: Record<string, Record<string, unknown>>,
  ) => WebAssembly.Instance;
  Memory: new (descriptor: { initial: number; maximum?: number; shared?: boolean }) => WebAssembly.Memory;
};
