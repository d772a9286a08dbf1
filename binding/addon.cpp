// Node-API glue: typed arrays in, plain pointers to native/, results out. No mathematics and no
// validation rules here (src/ owns those); only the checks that keep native code inside the memory
// it was given, whatever JavaScript passes.
#include <napi.h>

#include <cstdlib>
#include <string>

#include "../native/dispatch.hpp"
#include "../native/linear.hpp"
#include "../native/memory_hints.hpp"
#include "../native/thread_pool.hpp"
#include "async_job.hpp"
#include "views.hpp"

namespace softmax_simd {
void register_gram(Napi::Env env, Napi::Object exports);  // binding/gram.cpp
namespace {

// The fused pass's arguments, by position (src/loader.ts passes them in this order): a small call's
// fixed cost was mostly reading fifteen named properties of an options object.
enum LossArg : size_t {
  kX, kN, kD, kK, kW, kBias, kLabels, kTargets, kClassWeights, kSampleWeights, kIgnoreIndex,
  kLabelSmoothing, kRowLosses, kSums, kThreads, kLossArgCount,
  kRunNowIfSmall = kLossArgCount  // lossGradAsync only, optional: see kInlineAsyncWork
};

template <typename T>
struct LossArgs {
  LossProblem<T> problem;
  double* sums = nullptr;
  size_t threads = 1;
  const LinearKernels<T>* kern = nullptr;
};

template <typename T>
LossArgs<T> read_loss_args(const Napi::CallbackInfo& info, Keepalive* keep) {
  napi_env env = info.Env();
  LossArgs<T> a;
  auto& pb = a.problem;
  pb.N = size_value(env, info[kN], "N");
  pb.D = size_value(env, info[kD], "D");
  pb.K = size_value(env, info[kK], "K");
  pb.X = view<T>(env, info[kX], "X", checked_mul(pb.N, pb.D), keep).data;
  pb.W = view<T>(env, info[kW], "W", checked_mul(pb.D, pb.K), keep).data;
  pb.b = optional_view<T>(env, info[kBias], "b", pb.K, keep);
  pb.labels = optional_view<int32_t>(env, info[kLabels], "labels", pb.N, keep);
  pb.targets = optional_view<T>(env, info[kTargets], "targets", checked_mul(pb.N, pb.K), keep);
  if ((pb.labels == nullptr) == (pb.targets == nullptr))
    throw Napi::TypeError::New(env, "internal: exactly one of labels and targets is required");
  pb.class_weights = optional_view<double>(env, info[kClassWeights], "classWeights", pb.K, keep);
  pb.sample_weights = optional_view<double>(env, info[kSampleWeights], "sampleWeights", pb.N, keep);
  int64_t ignore = 0;
  if (napi_get_value_int64(env, info[kIgnoreIndex], &ignore) == napi_ok) {
    pb.has_ignore_index = true;
    pb.ignore_index = ignore;
  }
  double eps = 0;
  if (napi_get_value_double(env, info[kLabelSmoothing], &eps) != napi_ok) eps = 0;
  pb.label_smoothing = eps;
  if (!(pb.label_smoothing >= 0 && pb.label_smoothing <= 1))
    throw Napi::RangeError::New(env, "internal: labelSmoothing outside [0, 1]");
  pb.row_losses = const_cast<T*>(optional_view<T>(env, info[kRowLosses], "rowLosses", pb.N, keep));
  a.sums = const_cast<double*>(view<double>(env, info[kSums], "sums", loss_sums_size(pb.D, pb.K), keep).data);
  a.threads = threads_value(env, info[kThreads]);
  return a;
}

const LinearKernels<float>& kernels_for(float*) { return *active_kernels().linear_f32; }
const LinearKernels<double>& kernels_for(double*) { return *active_kernels().linear_f64; }

// The outcome as one number, status + 8 × row (exact in a double for any row): no object to build
// on the hot path of small calls. src/loader.ts decodeOutcome reads it.
Napi::Value outcome_value(Napi::Env env, LossOutcome out) {
  return Napi::Number::New(env, static_cast<double>(out.status) + 8.0 * static_cast<double>(out.row));
}

// An async call with at most this many multiply-adds (N·D·K), when its caller allows it (its
// argument kRunNowIfSmall is true: lossAndGradientsAsync without options.out; not an accumulator's
// addAsync, whose adds must be absorbed in the order they were made), runs at once on the calling
// thread and returns a settled Promise: its work (tiny's 8,192: about a microsecond; the fixed cost
// grows with D·K, the transpose of W and the scratch) is shorter than the hand-off to the job
// thread and back, which took ~80 µs a call awaited in turn on the Zen 4 host (20 µs a call
// with 20,000 in flight). Such a call is one part (parts_for), so it never waits for the thread
// pool, which a queued job may hold.
constexpr double kInlineAsyncWork = 65536;

// Whether an async call of N·D·K multiply-adds on `threads` is small enough to run at once.
bool runs_now(size_t N, size_t D, size_t K, size_t threads) {
  return double(N) * double(D) * double(K) <= kInlineAsyncWork && parts_for(N, D, K, threads) == 1;
}

// The Promise of a call that ran at once: already resolved with its outcome.
Napi::Value settled_promise(Napi::Env env, Napi::Value outcome) {
  Napi::Promise::Deferred settled = Napi::Promise::Deferred::New(env);
  settled.Resolve(outcome);
  return settled.Promise();
}

template <typename T>
Napi::Value loss_grad_typed(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  auto job = std::make_unique<FunctionJob>(env);
  LossArgs<T> a = read_loss_args<T>(info, async ? &job->keep : nullptr);
  a.kern = &kernels_for(static_cast<T*>(nullptr));
  if (!async) return outcome_value(env, loss_grad(*a.kern, a.problem, a.threads, a.sums));
  const LossProblem<T>& pb = a.problem;
  const bool may_run_now = info.Length() > kRunNowIfSmall && info[kRunNowIfSmall].IsBoolean() &&
                           info[kRunNowIfSmall].As<Napi::Boolean>().Value();
  if (may_run_now && runs_now(pb.N, pb.D, pb.K, a.threads))
    return settled_promise(env, outcome_value(env, loss_grad(*a.kern, pb, a.threads, a.sums)));
  auto outcome = std::make_shared<LossOutcome>();
  job->execute = [a, outcome] { *outcome = loss_grad(*a.kern, a.problem, a.threads, a.sums); };
  job->complete = [outcome](Napi::Env e) -> Napi::Value { return outcome_value(e, *outcome); };
  return submit(env, std::move(job));
}

Napi::Value LossGrad(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  if (info.Length() < kLossArgCount)
    throw Napi::TypeError::New(env, "internal: lossGrad expects its 15 arguments by position");
  switch (float_kind(env, info[kX], "X")) {
    case napi_float32_array:
      return loss_grad_typed<float>(info, async);
    default:
      return loss_grad_typed<double>(info, async);
  }
}

// finalizeGradients(sums, W, dW, scale, divisor, gradCoef): dW from the pass's float64 sums
// (native/linear.hpp finalize_gradients) over all of dW; W of dW's float type and at least its
// length (a W detached meanwhile is refused, not read as empty), sums at least 2 + that length.
template <typename T>
Napi::Value finalize_typed(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  const View<T> out = view<T>(env, info[2], "dW", 0, nullptr);
  const T* W = view<T>(env, info[1], "W", out.length, nullptr).data;
  const double* sums = view<double>(env, info[0], "sums", out.length + 2, nullptr).data;
  T* dW = const_cast<T*>(out.data);
  double scale = 0, divisor = 0, grad_coef = 0;
  if (napi_get_value_double(env, info[3], &scale) != napi_ok || napi_get_value_double(env, info[4], &divisor) != napi_ok ||
      napi_get_value_double(env, info[5], &grad_coef) != napi_ok)
    throw Napi::TypeError::New(env, "internal: finalizeGradients expects numbers for scale, divisor and gradCoef");
  finalize_gradients(sums, W, out.length, scale, divisor, grad_coef, dW);
  return Napi::Env(env).Undefined();
}

Napi::Value FinalizeGradients(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 6) throw Napi::TypeError::New(env, "internal: finalizeGradients expects 6 arguments");
  if (float_kind(env, info[2], "dW") == napi_float32_array) return finalize_typed<float>(info);
  return finalize_typed<double>(info);
}

// sumOfSquares(W): Σ W[i]² (native/linear.hpp sum_of_squares), a number.
template <typename T>
Napi::Value sum_of_squares_typed(const Napi::CallbackInfo& info) {
  const View<T> W = view<T>(info.Env(), info[0], "W", 0, nullptr);
  return Napi::Number::New(info.Env(), sum_of_squares(W.data, W.length));
}

Napi::Value SumOfSquares(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1) throw Napi::TypeError::New(env, "internal: sumOfSquares expects W");
  if (float_kind(env, info[0], "W") == napi_float32_array) return sum_of_squares_typed<float>(info);
  return sum_of_squares_typed<double>(info);
}

template <typename T>
Napi::Value linear_op_typed(const Napi::CallbackInfo& info, const std::string& op, bool async) {
  Napi::Env env = info.Env();
  Napi::Object o = info[0].As<Napi::Object>();
  auto job = std::make_unique<FunctionJob>(env);
  Keepalive* keep = async ? &job->keep : nullptr;
  const size_t N = get_size(o, "N"), K = get_size(o, "K");
  const size_t D = op == "softmax" ? 0 : get_size(o, "D");
  const size_t threads = get_threads(o);
  const LinearKernels<T>* kern = &kernels_for(static_cast<T*>(nullptr));
  std::function<bool()> work;
  if (op == "softmax") {
    const T* S = view<T>(o, "S", checked_mul(N, K), keep).data;
    T* P = const_cast<T*>(view<T>(o, "out", checked_mul(N, K), keep).data);
    work = [=] { return softmax(*kern, S, N, K, P, threads); };
  } else {
    const T* X = view<T>(o, "X", checked_mul(N, D), keep).data;
    const T* W = view<T>(o, "W", checked_mul(D, K), keep).data;
    const T* b = optional_view<T>(o, "b", K, keep);
    if (op == "scores") {
      T* S = const_cast<T*>(view<T>(o, "out", checked_mul(N, K), keep).data);
      work = [=] { return scores(*kern, X, N, D, W, K, b, S, threads); };
    } else {
      int32_t* out = const_cast<int32_t*>(view<int32_t>(o, "out", N, keep).data);
      work = [=] { return predict(*kern, X, N, D, W, K, b, out, threads); };
    }
  }
  if (!async) {
    if (!work()) throw Napi::Error::New(env, "out of memory");
    return env.Undefined();
  }
  // A small call runs at once, as a small lossAndGradientsAsync does (kInlineAsyncWork): it writes
  // only its own fresh output array, so no other call can see it finish early. softmax's rows are
  // weighed as parts_for weighs them (64 multiply-adds a class).
  if (runs_now(N, op == "softmax" ? 64 : D, K, threads)) return settled_promise(env, Napi::Boolean::New(env, work()));
  auto ok = std::make_shared<bool>(false);
  job->execute = [work, ok] { *ok = work(); };
  job->complete = [ok](Napi::Env e) -> Napi::Value { return Napi::Boolean::New(e, *ok); };
  return submit(env, std::move(job));
}

Napi::Value LinearOp(const Napi::CallbackInfo& info, const std::string& op, bool async) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject())
    throw Napi::TypeError::New(env, "internal: expects an options object");
  const char* key = op == "softmax" ? "S" : "X";
  if (float_kind(info[0].As<Napi::Object>(), key) == napi_float32_array)
    return linear_op_typed<float>(info, op, async);
  return linear_op_typed<double>(info, op, async);
}

Napi::Value Backend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("isa", active_kernels().name);
  Napi::Array compiled = Napi::Array::New(env);
  Napi::Array supported = Napi::Array::New(env);
  uint32_t i = 0, j = 0;
  for (Isa isa : compiled_isas()) {
    compiled.Set(i++, isa_name(isa));
    if (cpu_supports(isa)) supported.Set(j++, isa_name(isa));
  }
  o.Set("compiled", compiled);
  o.Set("supported", supported);
  o.Set("maxThreads", static_cast<double>(ThreadPool::kMaxThreads));
  return o;
}

Napi::Value SelectIsa(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value()
                                                             : std::string();
  std::string error;
  if (!select_isa(name, &error)) throw Napi::Error::New(env, error);
  return Napi::String::New(env, active_kernels().name);
}

// adviseHugePages(buffer): advises a fresh ArrayBuffer's whole 2 MiB spans for huge pages (before
// anything touches them: the pages are then made huge as they are first written) and returns the
// byte offset of its first 2 MiB boundary, where allocMatrix starts the matrix; −1 when nothing was
// advised (not Linux, too small, or refused), and allocMatrix then makes an ordinary array.
Napi::Value AdviseHugePages(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) throw Napi::TypeError::New(env, "internal: expects an ArrayBuffer");
  Napi::ArrayBuffer buffer = info[0].As<Napi::ArrayBuffer>();
  void* data = buffer.Data();
  const size_t bytes = buffer.ByteLength();
  if (data == nullptr || !advise_huge_pages(data, bytes)) return Napi::Number::New(env, -1);
  return Napi::Number::New(env, static_cast<double>(huge_page_offset(data)));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // The choice is made once per process, at first load; later loads (worker_threads) keep it.
  static const std::string load_error = [] {
    const char* forced = std::getenv("SOFTMAX_SIMD_ISA");
    std::string error;
    select_isa(forced ? forced : "", &error);
    return error;
  }();
  if (!load_error.empty()) throw Napi::Error::New(env, load_error);
  init_async(env);
  exports.Set("lossGrad", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return LossGrad(i, false); }));
  exports.Set("lossGradAsync", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return LossGrad(i, true); }));
  for (const char* op : {"scores", "softmax", "predict"}) {
    std::string name(op);
    exports.Set(name, Napi::Function::New(env, [name](const Napi::CallbackInfo& i) { return LinearOp(i, name, false); }));
    exports.Set(name + "Async", Napi::Function::New(env, [name](const Napi::CallbackInfo& i) { return LinearOp(i, name, true); }));
  }
  exports.Set("finalizeGradients", Napi::Function::New(env, FinalizeGradients));
  exports.Set("sumOfSquares", Napi::Function::New(env, SumOfSquares));
  exports.Set("backend", Napi::Function::New(env, Backend));
  exports.Set("selectIsa", Napi::Function::New(env, SelectIsa));
  exports.Set("adviseHugePages", Napi::Function::New(env, AdviseHugePages));
  register_gram(env, exports);
  return exports;
}

}  // namespace
}  // namespace softmax_simd

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  return softmax_simd::Init(env, exports);
}

NODE_API_MODULE(softmax_simd, InitAddon)
