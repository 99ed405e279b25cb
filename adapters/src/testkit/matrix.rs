//! Every backend peer the suites run against, listed once.

use std::sync::Arc;

use crate::memory::MemoryBackend;
use crate::Backend;

/// Expands `$suite!(factory)` once per backend peer compiled in, each in a module named
/// after the peer, so the conformance suite and the HTTP contract suite run against the
/// same list:
///
/// ```ignore
/// credbridge_adapters::backend_matrix!(credbridge_adapters::conformance_suite);
/// ```
///
/// Each peer but memory is a real server that `tests/run` starts; its factory panics,
/// saying so, when the variables naming it are not set.
#[macro_export]
macro_rules! backend_matrix {
    ($($suite:ident)::+) => {
        $crate::backend_matrix!(@peers [$($suite)::+];
            memory => $crate::testkit::memory;
            #[cfg(feature = "aws")] aws => $crate::testkit::moto::backend;
            #[cfg(feature = "aws")] aws_force_delete => $crate::testkit::moto::force_delete_backend;
            #[cfg(feature = "vault")] vault_kv2 => $crate::testkit::vault::kv2_root;
            #[cfg(feature = "vault")] vault_kv1 => $crate::testkit::vault::kv1_root;
            #[cfg(feature = "vault")] vault_kv2_approle => $crate::testkit::vault::kv2_approle;
            #[cfg(feature = "vault")] vault_kv1_approle => $crate::testkit::vault::kv1_approle;
            #[cfg(feature = "vault")] vault_namespace => $crate::testkit::vault::kv2_in_namespace;
        );
    };
    (@peers [$($suite:tt)+];
        $(#[$cfg:meta])? $peer:ident => $factory:path; $($rest:tt)*) => {
        $(#[$cfg])?
        mod $peer {
            $($suite)+!($factory);
        }
        $crate::backend_matrix!(@peers [$($suite)+]; $($rest)*);
    };
    (@peers [$($suite:tt)+];) => {};
}

/// Expands `$suite!(factory)` once per peer that resolves references, each in a module
/// named after the peer; `factory` is an `async fn() -> ReferencePeer`. The memory backend
/// resolves none (the conformance suite checks that it refuses them).
///
/// ```ignore
/// credbridge_adapters::reference_matrix!(credbridge_adapters::reference_suite);
/// ```
#[macro_export]
macro_rules! reference_matrix {
    ($($suite:ident)::+) => {
        $crate::backend_matrix!(@peers [$($suite)::+];
            #[cfg(feature = "aws")] aws => $crate::testkit::moto::references;
            #[cfg(feature = "vault")] vault_kv2 => $crate::testkit::vault::kv2_root_references;
            #[cfg(feature = "vault")] vault_kv1 => $crate::testkit::vault::kv1_root_references;
            #[cfg(feature = "vault")] vault_kv2_approle => $crate::testkit::vault::kv2_approle_references;
            #[cfg(feature = "vault")] vault_kv1_approle => $crate::testkit::vault::kv1_approle_references;
        );
    };
}

/// The in-process memory backend.
pub async fn memory() -> Arc<dyn Backend> {
    Arc::new(MemoryBackend::default())
}
