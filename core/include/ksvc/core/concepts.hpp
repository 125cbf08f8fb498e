#pragma once
//! All ksvc concepts.
#include <ksvc/core/concepts/buffer_provider.hpp>
#include <ksvc/core/concepts/completion_sink.hpp>
#include <ksvc/core/concepts/io_backend.hpp>
#include <ksvc/core/concepts/notifier.hpp>
#include <ksvc/core/concepts/shared_page.hpp>
#include <ksvc/core/concepts/syscall_router.hpp>
#include <ksvc/core/concepts/worker_pool.hpp>
