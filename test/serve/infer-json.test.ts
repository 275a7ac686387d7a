/**
 * The JSON infer body's fast path: the tensor's numbers read straight into float32 must be bit for bit what
 * `JSON.parse` and a Float32Array give, the rest of the request what `JSON.parse` gives; every body it does not take
 * whole is left to `JSON.parse` (undefined), so the route's errors stay as they were.
 */
import { describe, expect, it } from 'vitest';
import { JsonTensor } from '../../src/serve/inference.js';
import { parseInferJson } from '../../src/serve/routes/infer-json.js';

/** What the route read before the fast path: JSON.parse, then the numbers flattened into float32. */
function reference(text: string) {
  const request = JSON.parse(text) as { inputs: { data: unknown[] }[] };
  const values = Float32Array.from(request.inputs[0]!.data.flat(Infinity) as number[]);
  return { request, values };
}

/** Reads `text` both ways and checks they agree bit for bit; returns the fast path's tensor. */
function agree(text: string): JsonTensor {
  const parsed = parseInferJson(Buffer.from(text)) as { inputs: { data: unknown }[] } | undefined;
  expect(parsed, text.slice(0, 200)).toBeDefined();
  const tensor = parsed!.inputs[0]!.data as JsonTensor;
  expect(tensor).toBeInstanceOf(JsonTensor);
  const { request, values } = reference(text);
  expect(new Uint32Array(tensor.values.buffer)).toEqual(new Uint32Array(values.buffer));
  // Everything but the data is JSON.parse's own answer.
  parsed!.inputs[0]!.data = request.inputs[0]!.data;
  expect(parsed).toStrictEqual(request);
  return tensor;
}

const body = (data: string, extra = '') =>
  `{"inputs":[{"name":"input","shape":[1,1,2,2],"datatype":"FP32","data":${data}}]${extra}}`;

/** A deterministic stream of doubles in [0, 1) (a 32-bit LCG), so that a failure names its seed. */
function* randoms(seed: number) {
  let state = seed >>> 0;
  for (;;) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    yield state / 2 ** 32;
  }
}

describe('the JSON tensor fast path', () => {
  it('reads what clients write: float32 printed as doubles, short decimals, exponents, signs, zeros', () => {
    const random = randoms(7);
    const next = () => random.next().value as number;
    const kinds: (() => string)[] = [
      () => String(Math.fround(next())), // numpy float32 .tolist(): 17 significant digits
      () => String(Math.round(next() * 1e4) / 1e4), // 0.1234
      () => String(-next() * 10 ** Math.floor(next() * 8)),
      () => (next() * 100).toExponential(Math.floor(next() * 12)), // 1.2345e+1
      () => (next() / 1e6).toExponential(20).replace('e', 'E'),
      () => next().toPrecision(1 + Math.floor(next() * 21)), // up to 21 digits, trailing zeros included
      () => ['0', '-0', '0.0', '-0.000', '0e5', '1', '255', '1e0', '1E+2', '1e-2'][Math.floor(next() * 10)]!,
      () => `${Math.floor(next() * 1e9)}${Math.floor(next() * 1e9)}.${Math.floor(next() * 1e9)}`, // 18+ digits
    ];
    for (const kind of kinds) {
      const numbers = Array.from({ length: 500 }, kind);
      agree(body(`[${numbers.join(',')}]`));
    }
  });

  it('decides values that lie on or next to a float32 rounding boundary as JSON.parse does', () => {
    const random = randoms(11);
    const numbers: string[] = [];
    for (let i = 0; i < 2000; i++) {
      const f = Math.fround(
        (random.next().value as number) * 10 ** (Math.floor((random.next().value as number) * 10) - 5),
      );
      const bits = new Uint32Array(Float32Array.of(f).buffer)[0]!;
      const g = new Float32Array(Uint32Array.of(bits + 1).buffer)[0]!;
      const midpoint = (f + g) / 2; // exact in a double
      // The midpoint itself, and decimals just either side of it, in 17 to 25 digits.
      numbers.push(midpoint.toPrecision(21), midpoint.toPrecision(17), midpoint.toPrecision(25));
      numbers.push(String(midpoint), String(midpoint * (1 + 2 ** -52)), String(midpoint * (1 - 2 ** -52)));
    }
    agree(body(`[${numbers.join(',')}]`));
  });

  it('reads nested data, whitespace anywhere JSON allows it, and members in any order', () => {
    const tensor = agree(
      ' \n{ "id" : "a\\"b]" , "inputs" : [ { "data" : [ [ [ [ 1 , 2 ] ,\t[ 3 , 4 ] ] ] ] ,"shape":[1,1,2,2],' +
        '"name":"input","datatype":"FP32", "parameters": {"data": [9]} } ], "outputs": [{"name": "x"}] }\r\n',
    );
    expect(tensor.depth).toBe(4);
    expect(agree(body('[1,2,3,4]')).depth).toBe(1);
    // The route checks the count against the shape, and refuses more inputs than one: the fast path reads them.
    expect(agree(body('[1,2,3]')).values).toHaveLength(3);
    agree('{"inputs":[{"data":[5]},{"data":[6]},"x"]}');
    // Large exponents and many digits go through Number, as JSON.parse reads them.
    agree(body('[1e-30,1.5e30,0.1234567890123456789012345678,123456789012345678901234567890]'));
  });

  it('leaves every other body to JSON.parse', () => {
    const declined = [
      '',
      '  ',
      'null',
      '[]',
      '\ufeff' + body('[1]'), // a byte order mark: JSON.parse's error names it
      body('[1,2] x'),
      body('[1,2]') + ' x',
      body('[1,"2"]'),
      body('[1,null]'),
      body('[1,true]'),
      body('[]'),
      body('[[1],[]]'),
      body('[[1,2],3]'), // numbers at two depths
      body('[[1,2],[3]]'), // ragged
      body('[[[1,2],[3,4]],[[5,6]]]'),
      body('[1,[2]]'),
      body('[01]'),
      body('[+1]'),
      body('[.5]'),
      body('[1.]'),
      body('[1e]'),
      body('[-]'),
      body('[NaN]'),
      body('[1,]'),
      body('[1 2]'),
      body('[1e39]'), // outside float32: the route names the value
      body('[1e400]'),
      body('[-3.5e38]'),
      body('{"a":1}'),
      body('"x"'),
      '{"inputs":[{"data":[1],"data":[2]}]}', // a key twice: JSON.parse keeps the last
      '{"inputs":[{"data":[1]}],"inputs":[{"data":[2]}]}',
      '{"inputs":[{"data":[1],"data":"x"}]}',
      '{"inputs":[{"data":[1],"data":null}]}', // the later null is the request's data
      '{"inputs":[{"data":[1]}],"inputs":{"0":{"data":null}}}',
      '{"in\\u0070uts":[{"data":[1]}]}', // an escaped key
      '{"inputs":[{"d\\u0061ta":[1]}]}',
      '{"inputs":[{"data":[1]}]',
      '{"inputs":[{"data":[1]}],}',
      '{"inputs":[{"data":[1]},]}',
      '{"inputs":[{"data":[1]}],"x":}',
      '{"inputs":[{"data":[1]}],"x":"unterminated}',
      '{"inputs":[{"data":[1]}],"x":[1,2}',
      '{"inputs":{"data":[1]}}',
      '{"inputs":[["data",[1]]]}',
    ];
    for (const text of declined) expect(parseInferJson(Buffer.from(text)), text).toBeUndefined();
  });

  it('reads a body that is a view into a larger buffer', () => {
    const text = body('[0.25,0.5,0.75,1]');
    const whole = Buffer.from('xxxx' + text + 'yyyy');
    const parsed = parseInferJson(whole.subarray(4, 4 + text.length)) as { inputs: { data: JsonTensor }[] };
    expect(Array.from(parsed.inputs[0]!.data.values)).toEqual([0.25, 0.5, 0.75, 1]);
  });
});
