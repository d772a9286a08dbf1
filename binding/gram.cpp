// Node-API glue of the labelled Gram matrix: labeledGram(args) and labeledGramAsync(args), args =
// { X, N, D, y, rowStart, rowEnd, out, threads }. src/gram.ts validates for the user; the checks here
// only keep native code inside the memory it was given, whatever JavaScript passes.
#include <napi.h>

#include <cmath>
#include <functional>
#include <memory>
#include <string>

#include "../native/dispatch.hpp"
#include "../native/gram.hpp"
#include "async_job.hpp"
#include "views.hpp"

namespace softmax_simd {
namespace {

// A non-negative integer (rowStart may be 0, which get_size refuses).
size_t get_index(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("internal: ") + key + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 9007199254740991.0) || d != std::floor(d))
    throw Napi::RangeError::New(o.Env(), std::string("internal: ") + key + " must be a non-negative integer");
  return static_cast<size_t>(d);
}

const GramKernels<float>& gram_active(float*) { return gram_kernels_f32(active_kernels().isa); }
const GramKernels<double>& gram_active(double*) { return gram_kernels_f64(active_kernels().isa); }

template <typename T>
Napi::Value labeled_gram_typed(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  Napi::Object o = info[0].As<Napi::Object>();
  auto job = std::make_unique<FunctionJob>(env);
  Keepalive* keep = async ? &job->keep : nullptr;
  const size_t N = get_size(o, "N"), D = get_size(o, "D");
  const size_t row_start = get_index(o, "rowStart"), row_end = get_index(o, "rowEnd");
  if (!(row_start < row_end && row_end <= N))
    throw Napi::RangeError::New(env, "internal: rows must satisfy 0 <= rowStart < rowEnd <= N");
  const T* X = view<T>(o, "X", checked_mul(N, D), keep).data;
  const T* y = view<T>(o, "y", N, keep).data;
  T* out = const_cast<T*>(view<T>(o, "out", checked_mul(row_end - row_start, N), keep).data);
  const size_t threads = get_threads(o);
  const GramKernels<T>* kern = &gram_active(static_cast<T*>(nullptr));
  auto work = [=] { return labeled_gram(*kern, X, N, D, y, row_start, row_end, out, threads); };
  if (!async) return Napi::Boolean::New(env, work());
  auto ok = std::make_shared<bool>(false);
  job->execute = [work, ok] { *ok = work(); };
  job->complete = [ok](Napi::Env e) -> Napi::Value { return Napi::Boolean::New(e, *ok); };
  return submit(env, std::move(job));
}

Napi::Value LabeledGram(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject())
    throw Napi::TypeError::New(env, "internal: labeledGram expects an options object");
  if (float_kind(info[0].As<Napi::Object>(), "X") == napi_float32_array)
    return labeled_gram_typed<float>(info, async);
  return labeled_gram_typed<double>(info, async);
}

}  // namespace

// Adds labeledGram and labeledGramAsync to the addon's exports (called from Init in addon.cpp).
void register_gram(Napi::Env env, Napi::Object exports) {
  exports.Set("labeledGram", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return LabeledGram(i, false); }));
  exports.Set("labeledGramAsync", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return LabeledGram(i, true); }));
}

}  // namespace softmax_simd
