// The bridge builds the CNI 1.x result model of src/cni/spec; conversion to
// older versions happens only when the result is printed. (Type-only: nothing
// of the converter is loaded by this import.)
export type { DNS, IPConfig, Interface, Result as BridgeResult, Route } from '../spec/result.js';
