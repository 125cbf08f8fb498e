// io_uring_backend feature set: TASKRUN_FLAG without COOP_TASKRUN or DEFER_TASKRUN
// The twin (-DKSVC_TWIN) is the nearest valid set and must compile.
#include <ksvc/module/backends/io_uring_backend.hpp>

namespace cf {
#ifndef KSVC_TWIN
using backend = ksvc::io_uring_backend<ksvc::taskrun_flag>;
#else
using backend = ksvc::io_uring_backend<ksvc::coop_taskrun, ksvc::taskrun_flag>;
#endif
static_assert(sizeof(backend) > 0);
static_assert(ksvc::io_backend<backend>);
} // namespace cf
