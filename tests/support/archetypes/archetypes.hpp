#pragma once
//! One minimal model per ksvc concept: exactly what the concept requires, behaving as its
//! contract says, so the law suites in tests/concepts run over them as over the shipped models.
#include "archetype_backend.hpp"
#include "archetype_buffer_provider.hpp"
#include "archetype_notifier.hpp"
#include "archetype_router.hpp"
#include "archetype_shared_page.hpp"
#include "archetype_sink.hpp"
#include "archetype_worker_pool.hpp"
