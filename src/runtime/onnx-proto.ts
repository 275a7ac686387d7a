/**
 * onnx-proto is CommonJS whose `onnx` export Node's ESM loader cannot see; this module hands its runtime
 * namespace to ESM callers. Types come from `import type { onnx as OnnxTypes } from 'onnx-proto'`.
 */
import onnxProto from 'onnx-proto';

export const onnx = onnxProto.onnx;
