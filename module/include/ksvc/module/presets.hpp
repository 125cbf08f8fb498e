#pragma once
//! Ready-made compositions.
#include <ksvc/module/backends/epoll_backend.hpp>
#include <ksvc/module/backends/fallback_backend.hpp>
#include <ksvc/module/backends/io_uring_backend.hpp>
#include <ksvc/module/buffers/heap_buffers.hpp>
#include <ksvc/module/buffers/provided_buffer_ring.hpp>
#include <ksvc/module/buffers/registered_buffers.hpp>
#include <ksvc/module/instance.hpp>
#include <ksvc/module/notifiers/eventfd_notifier.hpp>
#include <ksvc/module/notifiers/futex_notifier.hpp>
#include <ksvc/module/routers/probe_router.hpp>
#include <ksvc/module/workers/fixed_pool.hpp>
#include <ksvc/module/workers/inline_worker.hpp>
#include <ksvc/module/workers/lazy_pool.hpp>

namespace ksvc {

//! Safe and working everywhere: probed routes, a plain ring, a fixed pool — and where the process
//! may not use io_uring (sysctl, a seccomp filter, ENOSYS, KSVC_DISABLE_IO_URING), the epoll
//! backend instead, with routes that follow it (fallback_backend; one log line says why).
using default_instance = instance<probe_router, basic_io_uring_or_epoll, fixed_pool, eventfd_notifier, heap_buffers>;
static_assert(instance_composition<default_instance>);

//! No io_uring at all: sockets, pipes and other pollable files through epoll and non-blocking
//! syscalls, files and everything else on the pool (epoll_backend.hpp says exactly what).
//! Sockets are registered once, edge-triggered: close the sockets it waits on through it (as
//! with libuv or Asio). instance<probe_router, epoll_backend, …> is the one-shot form, which
//! also notices sockets closed behind its back.
using epoll_instance = instance<probe_router, epoll_edge_backend, fixed_pool, eventfd_notifier, heap_buffers>;
static_assert(instance_composition<epoll_instance>);

//! The default composition with registered buffers: leases of the pool are registered with the
//! ring (io_uring_register_buffers), op::read_fixed / op::write_fixed on a lease become
//! READ_FIXED / WRITE_FIXED (plain pread / pwrite of the same bytes where registration is
//! refused). Registered buffers are a buffer policy, not a ring feature, so this alias names the
//! whole instance.
using fixed_buffer_io_uring = instance<probe_router, basic_io_uring, fixed_pool, eventfd_notifier, registered_buffers>;
static_assert(instance_composition<fixed_buffer_io_uring>);

//! The ring of server_instance: one thread drives it (single issuer, DEFER_TASKRUN, its fd
//! registered), a sparse table of 16 384 direct descriptors (cut to RLIMIT_NOFILE where that is
//! lower), a CQ of 16 384 entries for one multishot recv per connection, and least privilege
//! where the kernel has it (restricted: only the opcodes and registrations ksvc uses, 5.10+).
//! Each feature falls back on its own where the kernel lacks it (features() says what the ring got).
using server_io_uring = io_uring_backend<single_issuer, defer_taskrun, registered_ring_fd, fixed_files<16384>,
                                         cq_entries<16384>, restricted_t<feature_mode::automatic>>;
static_assert(io_backend<server_io_uring>);

//! What a TCP server on one thread wants: the server thread drives the loop (inline dispatch), a
//! server_io_uring ring, multishot accept into direct descriptors and multishot recv into a
//! provided buffer ring (instance_options::buffer_count × buffer_size, incremental on 6.12+),
//! Tier-2 syscalls on a lazy pool (no thread until one is needed), and a futex doorbell (no
//! eventfd where the kernel has IORING_OP_FUTEX_WAIT). examples/echo-server shows it in use.
//! Where io_uring is refused, the same instance serves through the epoll backend: socket entries
//! work, multishot accept and recv are emulated (recv into the provided buffer ring, read in user
//! space), direct descriptors and zero-copy sends are refused with errc::unsupported, and
//! features() says that nothing of the ring is in effect.
using server_instance = instance<probe_router, fallback_backend<server_io_uring>, lazy_pool, futex_notifier,
                                 provided_buffer_ring, ring_completion_sink, process_shared_page, inline_dispatch>;
static_assert(instance_composition<server_instance>);

} // namespace ksvc
