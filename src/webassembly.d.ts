// WebAssembly is a global of Node.js, declared by lib.dom, which this TypeScript setup does not load: the
// little lifeboat uses of it (gearScan.ts, rowHash.ts) is declared here.
declare namespace WebAssembly {
  interface Module {
    readonly kind?: 'wasm-module';
  }
  interface Memory {
    readonly buffer: ArrayBuffer;
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
  Instance: new (module: WebAssembly.Module) => WebAssembly.Instance;
};
