// What `import x from "*.wasm"` is under @rollup/plugin-wasm: a loader that, called without
// imports, compiles the embedded bytes into a module.
declare module "*.wasm" {
  const load: () => Promise<WebAssembly.Module>;
  export default load;
}
