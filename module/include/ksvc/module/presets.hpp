#pragma once
//! Ready-made compositions.
#include <ksvc/module/backends/io_uring_backend.hpp>
#include <ksvc/module/buffers/heap_buffers.hpp>
#include <ksvc/module/buffers/provided_buffer_ring.hpp>
#include <ksvc/module/buffers/registered_buffers.hpp>
#include <ksvc/module/instance.hpp>
#include <ksvc/module/notifiers/eventfd_notifier.hpp>
#include <ksvc/module/routers/probe_router.hpp>
#include <ksvc/module/workers/fixed_pool.hpp>
#include <ksvc/module/workers/inline_worker.hpp>

namespace ksvc {

//! Safe and working everywhere io_uring is: probed routes, a plain ring, a fixed pool.
using default_instance = instance<probe_router, basic_io_uring, fixed_pool, eventfd_notifier, heap_buffers>;
static_assert(instance_composition<default_instance>);

} // namespace ksvc
