/*
 * cnnx's WebAssembly SIMD training kernels, for the shapes where tfjs-backend-wasm's own (XNNPACK, or plain loops)
 * are slow: the convolution of a single-channel input (a grayscale network's first layer, as LeNet's and
 * AlexNet's on MNIST) and its filter gradient, the filter gradient and the input gradient of few channels,
 * MaxPoolGrad of 2x2 windows with stride 2, and the sum over rows that a bias gradient is. Tensors are NHWC
 * float32.
 *
 * The module imports tfjs-backend-wasm's memory and works on its heap in place: every pointer is a byte address
 * there. It has no data and uses no stack (checked by build.sh), so it cannot touch memory it was not given.
 * Channels are computed 4 at a time (one f32x4); when C is not a multiple of 4 the last group starts at C - 4 and
 * overlaps the previous one, so these kernels need at least 4 channels. The input gradient is the exception: it
 * vectorises over the output channels (O a multiple of 4) and takes any number of input channels.
 *
 * Build: src/train/backends/wasm/simd/build.sh (clang and lld, Debian's packages).
 */
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name)))

static inline v128_t load(const float *p) { return wasm_v128_load(p); }
static inline v128_t madd(v128_t acc, float x, v128_t w) {
  return wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_f32x4_splat(x), w));
}

/* One output pixel, every channel group: the general case (image edges, any O). */
static inline void conv2d_pixel(const float *image, const float *filter, const float *bias, float *out, int H, int W,
                                int KH, int KW, int O, int r0, int c0) {
  const int kh0 = r0 < 0 ? -r0 : 0;
  const int kh1 = r0 + KH > H ? H - r0 : KH;
  const int kw0 = c0 < 0 ? -c0 : 0;
  const int kw1 = c0 + KW > W ? W - c0 : KW;
  for (int g = 0; g < O; g += 4) {
    const int o = g + 4 <= O ? g : O - 4;
    v128_t acc = load(bias + o);
    for (int kh = kh0; kh < kh1; kh++) {
      const float *row = image + (r0 + kh) * W + c0;
      const float *taps = filter + kh * KW * O + o;
      for (int kw = kw0; kw < kw1; kw++) acc = madd(acc, row[kw], load(taps + kw * O));
    }
    wasm_v128_store(out + o, acc);
  }
}

/*
 * Two horizontally adjacent output pixels inside the image, 4 < O <= 8 (two channel groups, the second at O - 4):
 * each filter load serves both pixels. The same sums in the same order as conv2d_pixel.
 */
static inline void conv2d_pair8(const float *image, const float *filter, const float *bias, float *out, int W, int KH,
                                int KW, int O, int s, int r0, int c0) {
  const int o1 = O - 4;
  v128_t a0 = load(bias), a1 = load(bias + o1);
  v128_t b0 = a0, b1 = a1;
  for (int kh = 0; kh < KH; kh++) {
    const float *row = image + (r0 + kh) * W + c0;
    const float *taps = filter + kh * KW * O;
    for (int kw = 0; kw < KW; kw++) {
      const v128_t w0 = load(taps + kw * O), w1 = load(taps + kw * O + o1);
      const float xa = row[kw], xb = row[kw + s];
      a0 = madd(a0, xa, w0);
      a1 = madd(a1, xa, w1);
      b0 = madd(b0, xb, w0);
      b1 = madd(b1, xb, w1);
    }
  }
  wasm_v128_store(out, a0);
  wasm_v128_store(out + o1, a1);
  wasm_v128_store(out + O, b0);
  wasm_v128_store(out + O + o1, b1);
}

/*
 * Convolution of x [B, H, W, 1] with filter [KH, KW, 1, O] (O >= 4), any stride s and zero padding (top, left; the
 * far edges follow from the output size OH x OW). XNNPACK computes it with one input channel per output pixel and
 * spends most of its time on indirection.
 *
 * y[b, i, j, o] = bias[o] + sum over kh, kw (rows then columns) of x[b, i*s + kh - top, j*s + kw - left] *
 * filter[kh, kw, o], taps outside the image skipped (zero padding).
 */
EXPORT(conv2d)
void conv2d(const float *x, const float *filter, const float *bias, float *y, int B, int H, int W, int C, int KH,
            int KW, int OH, int OW, int O, int s, int top, int left) {
  (void)C; /* 1: the geometry arguments are the same for every convolution kernel here */
  for (int b = 0; b < B; b++) {
    const float *image = x + b * H * W;
    for (int i = 0; i < OH; i++) {
      const int r0 = i * s - top;
      const int rowsInside = r0 >= 0 && r0 + KH <= H;
      float *out = y + (b * OH + i) * OW * O;
      int j = 0;
      if (rowsInside && O > 4 && O <= 8) {
        for (; j + 1 < OW; j += 2) {
          const int c0 = j * s - left;
          if (c0 < 0 || c0 + s + KW > W) {
            conv2d_pixel(image, filter, bias, out + j * O, H, W, KH, KW, O, r0, c0);
            conv2d_pixel(image, filter, bias, out + (j + 1) * O, H, W, KH, KW, O, r0, c0 + s);
          } else {
            conv2d_pair8(image, filter, bias, out + j * O, W, KH, KW, O, s, r0, c0);
          }
        }
      }
      for (; j < OW; j++) conv2d_pixel(image, filter, bias, out + j * O, H, W, KH, KW, O, r0, j * s - left);
    }
  }
}

/*
 * The filter gradient for a kernel K wide: dw[kh, kw, o] += sum over images, then rows i and columns j of one
 * image, of x[b, i*s + kh - top, j*s + kw - left] * dy[b, i, j, o]. Each image's sum is taken in registers (K
 * accumulators of 4 channels) and added to dw, image after image, so the result has the same bits every time.
 */
#define FILTER_GRAD(K)                                                                                              \
  static void filter_grad_##K(const float *x, const float *dy, float *dw, int B, int H, int W, int KH, int OH,     \
                              int OW, int O, int s, int top, int left) {                                            \
    for (int b = 0; b < B; b++) {                                                                                   \
      const float *image = x + b * H * W;                                                                           \
      const float *grads = dy + b * OH * OW * O;                                                                    \
      for (int kh = 0; kh < KH; kh++) {                                                                             \
        for (int g = 0; g < O; g += 4) {                                                                            \
          const int o = g + 4 <= O ? g : O - 4;                                                                     \
          v128_t acc[K];                                                                                            \
          for (int kw = 0; kw < K; kw++) acc[kw] = wasm_f32x4_splat(0.0f);                                          \
          for (int i = 0; i < OH; i++) {                                                                            \
            const int r = i * s - top + kh;                                                                         \
            if (r < 0 || r >= H) continue;                                                                          \
            const float *row = image + r * W;                                                                       \
            const float *d = grads + i * OW * O + o;                                                                \
            for (int j = 0; j < OW; j++, d += O) {                                                                  \
              const int c0 = j * s - left;                                                                          \
              const v128_t dj = load(d);                                                                            \
              if (c0 >= 0 && c0 + K <= W) {                                                                         \
                for (int kw = 0; kw < K; kw++) acc[kw] = madd(acc[kw], row[c0 + kw], dj);                           \
              } else {                                                                                              \
                for (int kw = 0; kw < K; kw++)                                                                      \
                  if (c0 + kw >= 0 && c0 + kw < W) acc[kw] = madd(acc[kw], row[c0 + kw], dj);                       \
              }                                                                                                     \
            }                                                                                                       \
          }                                                                                                         \
          /* Lanes below g belong to the previous group: keep its sums. */                                          \
          const v128_t keep = wasm_i32x4_gt(wasm_i32x4_make(o, o + 1, o + 2, o + 3), wasm_i32x4_splat(g - 1));      \
          float *out = dw + kh * K * O + o;                                                                         \
          for (int kw = 0; kw < K; kw++) {                                                                          \
            const v128_t sum = wasm_f32x4_add(load(out + kw * O), wasm_v128_and(acc[kw], keep));                    \
            wasm_v128_store(out + kw * O, sum);                                                                     \
          }                                                                                                         \
        }                                                                                                           \
      }                                                                                                             \
    }                                                                                                               \
  }

FILTER_GRAD(3)
FILTER_GRAD(5)
FILTER_GRAD(7)
FILTER_GRAD(11)

/*
 * dw [KH, KW, 1, O] (zeroed by the caller) += the filter gradient of x and dy. Returns 0, or -1 for a width
 * without a kernel (3, 5, 7 and 11 have one).
 */
EXPORT(conv2d_filter_grad)
int conv2d_filter_grad(const float *x, const float *dy, float *dw, int B, int H, int W, int C, int KH, int KW,
                       int OH, int OW, int O, int s, int top, int left) {
  (void)C; /* 1 */
  switch (KW) {
  case 3: filter_grad_3(x, dy, dw, B, H, W, KH, OH, OW, O, s, top, left); return 0;
  case 5: filter_grad_5(x, dy, dw, B, H, W, KH, OH, OW, O, s, top, left); return 0;
  case 7: filter_grad_7(x, dy, dw, B, H, W, KH, OH, OW, O, s, top, left); return 0;
  case 11: filter_grad_11(x, dy, dw, B, H, W, KH, OH, OW, O, s, top, left); return 0;
  default: return -1;
  }
}

/*
 * MaxPoolGrad of 2x2 windows with stride 2 and no padding, C >= 4: dx [B, H, W, C] from the pooled input x and dy
 * [B, OH, OW, C]. Each dy goes to the first maximum of its window in row-major order (a NaN is never a maximum
 * unless it is the window's first value), as dy + 0 (so -0 becomes +0, as adding into zeros gives); the window's
 * other values get 0. Values that no window covers (an odd last row or column) are left for the caller to zero.
 */
EXPORT(max_pool_grad_2x2)
void max_pool_grad_2x2(const float *x, const float *dy, float *dx, int B, int H, int W, int C, int OH, int OW) {
  const v128_t zero = wasm_f32x4_splat(0.0f);
  for (int b = 0; b < B; b++) {
    for (int oy = 0; oy < OH; oy++) {
      for (int ox = 0; ox < OW; ox++) {
        const int p0 = ((b * H + 2 * oy) * W + 2 * ox) * C;
        const int p1 = p0 + C, p2 = p0 + W * C, p3 = p2 + C;
        const float *g = dy + ((b * OH + oy) * OW + ox) * C;
        for (int cg = 0; cg < C; cg += 4) {
          const int c = cg + 4 <= C ? cg : C - 4;
          const v128_t v0 = load(x + p0 + c), v1 = load(x + p1 + c), v2 = load(x + p2 + c), v3 = load(x + p3 + c);
          const v128_t d = wasm_f32x4_add(load(g + c), zero);
          const v128_t m1 = wasm_f32x4_gt(v1, v0);
          v128_t best = wasm_v128_bitselect(v1, v0, m1);
          const v128_t m2 = wasm_f32x4_gt(v2, best);
          best = wasm_v128_bitselect(v2, best, m2);
          const v128_t m3 = wasm_f32x4_gt(v3, best);
          /* The last window value that beat the running maximum wins. */
          const v128_t w2 = wasm_v128_andnot(m2, m3);
          const v128_t w1 = wasm_v128_andnot(wasm_v128_andnot(m1, m2), m3);
          const v128_t w0 = wasm_v128_not(wasm_v128_or(wasm_v128_or(m1, m2), m3));
          wasm_v128_store(dx + p0 + c, wasm_v128_and(d, w0));
          wasm_v128_store(dx + p1 + c, wasm_v128_and(d, w1));
          wasm_v128_store(dx + p2 + c, wasm_v128_and(d, w2));
          wasm_v128_store(dx + p3 + c, wasm_v128_and(d, m3));
        }
      }
    }
  }
}

/*
 * out[c] = sum of x[r, c] over the rows r of x [rows, C] (C >= 4): a bias gradient. Rows are added alternately
 * into two running sums, which are added at the end; the same order every call.
 */
EXPORT(sum_rows)
void sum_rows(const float *x, float *out, int rows, int C) {
  for (int cg = 0; cg < C; cg += 4) {
    const int c = cg + 4 <= C ? cg : C - 4;
    v128_t even = wasm_f32x4_splat(0.0f), odd = even;
    const float *p = x + c;
    int r = 0;
    for (; r + 1 < rows; r += 2, p += 2 * C) {
      even = wasm_f32x4_add(even, load(p));
      odd = wasm_f32x4_add(odd, load(p + C));
    }
    if (r < rows) even = wasm_f32x4_add(even, load(p));
    wasm_v128_store(out + c, wasm_f32x4_add(even, odd));
  }
}

/*
 * Filter gradient of a convolution with few channels (tfjs-backend-wasm's transposed XNNPACK convolution is slow
 * there): x [B, H, W, C], dy [B, OH, OW, O] with O a multiple of 16, any stride s and padding (top, left), dw
 * [KH, KW, C, O] (zeroed by the caller) += sum over images, then rows i and columns j of one image, of
 * x[b, i*s + kh - top, j*s + kw - left, c] * dy[b, i, j, o]. Per image, tap and pair of input channels, 16 output
 * channels are summed in 8 registers; each image's sums are added to dw in image order.
 */
static inline void filter_grad_taps(const float *image, const float *grads, float *dw, int H, int W, int C, int OH,
                                    int OW, int O, int s, int r0, int c0, int c, int pair) {
  for (int oc = 0; oc < O; oc += 16) {
    v128_t a0 = wasm_f32x4_splat(0.0f), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    /* Columns j whose tap j*s + c0 lies inside the image. */
    const int j0 = c0 < 0 ? (-c0 + s - 1) / s : 0;
    const int jEnd = (W - 1 - c0) / s + 1;
    const int j1 = c0 > W - 1 ? 0 : (jEnd < OW ? jEnd : OW);
    for (int i = 0; i < OH; i++) {
      const int r = i * s + r0;
      if (r < 0 || r >= H) continue;
      const float *px = image + (r * W + j0 * s + c0) * C + c;
      const float *d = grads + (i * OW + j0) * O + oc;
      for (int j = j0; j < j1; j++, px += s * C, d += O) {
        const v128_t d0 = load(d), d1 = load(d + 4), d2 = load(d + 8), d3 = load(d + 12);
        const float xa = px[0];
        a0 = madd(a0, xa, d0);
        a1 = madd(a1, xa, d1);
        a2 = madd(a2, xa, d2);
        a3 = madd(a3, xa, d3);
        if (pair) {
          const float xb = px[1];
          b0 = madd(b0, xb, d0);
          b1 = madd(b1, xb, d1);
          b2 = madd(b2, xb, d2);
          b3 = madd(b3, xb, d3);
        }
      }
    }
    float *out = dw + c * O + oc;
    wasm_v128_store(out, wasm_f32x4_add(load(out), a0));
    wasm_v128_store(out + 4, wasm_f32x4_add(load(out + 4), a1));
    wasm_v128_store(out + 8, wasm_f32x4_add(load(out + 8), a2));
    wasm_v128_store(out + 12, wasm_f32x4_add(load(out + 12), a3));
    if (pair) {
      out += O;
      wasm_v128_store(out, wasm_f32x4_add(load(out), b0));
      wasm_v128_store(out + 4, wasm_f32x4_add(load(out + 4), b1));
      wasm_v128_store(out + 8, wasm_f32x4_add(load(out + 8), b2));
      wasm_v128_store(out + 12, wasm_f32x4_add(load(out + 12), b3));
    }
  }
}

EXPORT(conv2d_filter_grad_multi)
void conv2d_filter_grad_multi(const float *x, const float *dy, float *dw, int B, int H, int W, int C, int KH, int KW,
                              int OH, int OW, int O, int s, int top, int left) {
  for (int b = 0; b < B; b++) {
    const float *image = x + b * H * W * C;
    const float *grads = dy + b * OH * OW * O;
    for (int kh = 0; kh < KH; kh++) {
      for (int kw = 0; kw < KW; kw++) {
        float *tap = dw + (kh * KW + kw) * C * O;
        int c = 0;
        for (; c + 1 < C; c += 2) filter_grad_taps(image, grads, tap, H, W, C, OH, OW, O, s, kh - top, kw - left, c, 1);
        if (c < C) filter_grad_taps(image, grads, tap, H, W, C, OH, OW, O, s, kh - top, kw - left, c, 0);
      }
    }
  }
}

/*
 * Input gradient of a stride-1 convolution with few input channels (XNNPACK computes it as a "full" convolution
 * whose output has those few channels, which fill its vectors badly): dy [B, OH, OW, O] with O a multiple of 4,
 * filter [KH, KW, C, O], padding (top, left), dx [B, H, W, C] =
 *   sum over kh, kw (rows then columns) and over o of dy[b, y + top - kh, x + left - kw, o] * filter[kh, kw, c, o],
 * taps whose dy pixel lies outside dy skipped. Each dx pixel gathers its taps: the products of 4 output channels
 * are summed lane by lane over every tap and channel group, then across the 4 lanes. Two images at a time share
 * each filter load (an odd last image is computed as its own pair); channels in blocks of up to 6 registers.
 */
static inline float lanes_sum(v128_t v) {
  return wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1) + wasm_f32x4_extract_lane(v, 2) +
         wasm_f32x4_extract_lane(v, 3);
}

#define ACC_DECL(k) v128_t p##k = wasm_f32x4_splat(0.0f), q##k = p##k;
#define ACC_STEP(k)                                                                                                 \
  {                                                                                                                 \
    const v128_t w = load(taps + (k) * O);                                                                          \
    p##k = wasm_f32x4_add(p##k, wasm_f32x4_mul(d0, w));                                                             \
    q##k = wasm_f32x4_add(q##k, wasm_f32x4_mul(d1, w));                                                             \
  }
#define ACC_STORE(k)                                                                                                \
  out0[k] = lanes_sum(p##k);                                                                                        \
  out1[k] = lanes_sum(q##k);

#define REPEAT_1(M) M(0)
#define REPEAT_2(M) REPEAT_1(M) M(1)
#define REPEAT_3(M) REPEAT_2(M) M(2)
#define REPEAT_4(M) REPEAT_3(M) M(3)
#define REPEAT_5(M) REPEAT_4(M) M(4)
#define REPEAT_6(M) REPEAT_5(M) M(5)

/* Channels [c, c + N) of one dx pixel (y, x) of two images. */
#define INPUT_GRAD_BLOCK(N)                                                                                         \
  static inline void input_grad_block_##N(const float *g0, const float *g1, const float *filter, float *out0,      \
                                          float *out1, int C, int KW, int OW, int O, int kh0, int kh1, int kw0,     \
                                          int kw1, int i0, int j0) {                                                \
    REPEAT_##N(ACC_DECL);                                                                                           \
    for (int kh = kh0; kh < kh1; kh++) {                                                                            \
      for (int kw = kw0; kw < kw1; kw++) {                                                                          \
        const int at = ((i0 - kh) * OW + (j0 - kw)) * O;                                                            \
        const float *taps0 = filter + (kh * KW + kw) * C * O;                                                       \
        for (int o = 0; o < O; o += 4) {                                                                            \
          const v128_t d0 = load(g0 + at + o), d1 = load(g1 + at + o);                                              \
          const float *taps = taps0 + o;                                                                            \
          REPEAT_##N(ACC_STEP);                                                                                     \
        }                                                                                                           \
      }                                                                                                             \
    }                                                                                                               \
    REPEAT_##N(ACC_STORE);                                                                                          \
  }

INPUT_GRAD_BLOCK(1)
INPUT_GRAD_BLOCK(2)
INPUT_GRAD_BLOCK(3)
INPUT_GRAD_BLOCK(4)
INPUT_GRAD_BLOCK(5)
INPUT_GRAD_BLOCK(6)

/* Every channel block of one dx pixel (y, x) of two images. */
static inline void input_grad_pixel(const float *g0, const float *g1, const float *filter, float *out0, float *out1,
                                    int C, int KW, int OW, int O, int kh0, int kh1, int kw0, int kw1, int i0, int j0) {
  int c = 0;
  for (; c + 6 <= C; c += 6)
    input_grad_block_6(g0, g1, filter + c * O, out0 + c, out1 + c, C, KW, OW, O, kh0, kh1, kw0, kw1, i0, j0);
  const float *f = filter + c * O;
  out0 += c;
  out1 += c;
  switch (C - c) {
  case 1: input_grad_block_1(g0, g1, f, out0, out1, C, KW, OW, O, kh0, kh1, kw0, kw1, i0, j0); break;
  case 2: input_grad_block_2(g0, g1, f, out0, out1, C, KW, OW, O, kh0, kh1, kw0, kw1, i0, j0); break;
  case 3: input_grad_block_3(g0, g1, f, out0, out1, C, KW, OW, O, kh0, kh1, kw0, kw1, i0, j0); break;
  case 4: input_grad_block_4(g0, g1, f, out0, out1, C, KW, OW, O, kh0, kh1, kw0, kw1, i0, j0); break;
  case 5: input_grad_block_5(g0, g1, f, out0, out1, C, KW, OW, O, kh0, kh1, kw0, kw1, i0, j0); break;
  default: break;
  }
}

EXPORT(conv2d_input_grad)
void conv2d_input_grad(const float *dy, const float *filter, float *dx, int B, int H, int W, int C, int KH, int KW,
                       int OH, int OW, int O, int s, int top, int left) {
  (void)s; /* 1 */
  for (int b = 0; b < B; b += 2) {
    const int b1 = b + 1 < B ? b + 1 : b;
    const float *g0 = dy + b * OH * OW * O, *g1 = dy + b1 * OH * OW * O;
    for (int y = 0; y < H; y++) {
      /* dy row i0 - kh must lie in [0, OH). */
      const int i0 = y + top;
      const int kh0 = i0 - OH + 1 > 0 ? i0 - OH + 1 : 0;
      const int kh1 = i0 + 1 < KH ? i0 + 1 : KH;
      for (int x = 0; x < W; x++) {
        const int j0 = x + left;
        const int kw0 = j0 - OW + 1 > 0 ? j0 - OW + 1 : 0;
        const int kw1 = j0 + 1 < KW ? j0 + 1 : KW;
        float *out0 = dx + ((b * H + y) * W + x) * C, *out1 = dx + ((b1 * H + y) * W + x) * C;
        input_grad_pixel(g0, g1, filter, out0, out1, C, KW, OW, O, kh0, kh1, kw0, kw1, i0, j0);
      }
    }
  }
}
