// Run a TF.js graph model with TensorFlow.js's pure JavaScript CPU backend: the
// reference the project's TF.js-to-ONNX converter is tested against.
//
// node run-graph.js REQUEST.json
// REQUEST: {"model": "path/model.json", "input": {"name", "file", "shape"},
//           "outputs": ["node", ...], "out_dir": "folder"}
// The input is raw little-endian float32; each output is written to
// out_dir/<index>.f32 and its shape printed as JSON on stdout.
"use strict";

const fs = require("fs");
const path = require("path");
const tf = require("@tensorflow/tfjs-core");
require("@tensorflow/tfjs-backend-cpu");
const converter = require("@tensorflow/tfjs-converter");

async function main() {
  const request = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  await tf.setBackend("cpu");
  const document = JSON.parse(fs.readFileSync(request.model, "utf8"));
  const folder = path.dirname(request.model);
  const weightSpecs = [];
  const buffers = [];
  for (const group of document.weightsManifest) {
    weightSpecs.push(...group.weights);
    for (const file of group.paths) {
      buffers.push(fs.readFileSync(path.join(folder, file)));
    }
  }
  const data = Buffer.concat(buffers);
  const artifacts = {
    modelTopology: document.modelTopology,
    format: document.format,
    generatedBy: document.generatedBy,
    convertedBy: document.convertedBy,
    signature: document.signature,
    weightSpecs,
    weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.length),
  };
  const model = await converter.loadGraphModel(tf.io.fromMemory(artifacts));
  const raw = fs.readFileSync(request.input.file);
  const values = new Float32Array(raw.buffer, raw.byteOffset, raw.length / 4);
  const input = tf.tensor(values, request.input.shape, "float32");
  const started = Date.now();
  let results = await model.executeAsync(
    { [request.input.name]: input },
    request.outputs,
  );
  const elapsed = Date.now() - started;
  if (!Array.isArray(results)) results = [results];
  const shapes = [];
  for (const [index, tensor] of results.entries()) {
    const array = await tensor.data();
    const floats = Float32Array.from(array);
    fs.writeFileSync(
      path.join(request.out_dir, `${index}.f32`),
      Buffer.from(floats.buffer),
    );
    shapes.push(tensor.shape);
  }
  process.stdout.write(JSON.stringify({ shapes, elapsed_ms: elapsed }) + "\n");
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
