//! Savepoints on every store of a world, for work that must commit or roll back as one.

use super::World;

/// Savepoints on every store of a world, for work that must commit or roll back as one
/// (an OData `$batch` changeset).
#[derive(Debug, Clone)]
pub(crate) struct WorldSavepoint {
    fno: Vec<(String, crate::store::Savepoint)>,
    dataverse: Vec<(String, crate::store::Savepoint)>,
}

impl World {
    /// Opens a transaction on every store. Nested dual-write transactions inside it commit
    /// into it; [`World::rollback_all`] undoes all of them.
    pub(crate) fn begin_all(&mut self) -> WorldSavepoint {
        WorldSavepoint {
            fno: self
                .fno
                .iter_mut()
                .map(|(n, e)| (n.clone(), e.store.begin()))
                .collect(),
            dataverse: self
                .dataverse
                .iter_mut()
                .map(|(n, d)| (n.clone(), d.store.begin()))
                .collect(),
        }
    }

    /// Keeps everything since the savepoint.
    pub(crate) fn commit_all(&mut self, sp: WorldSavepoint) {
        for (n, s) in sp.fno {
            if let Some(e) = self.fno.get_mut(&n) {
                e.store.commit(s);
            }
        }
        for (n, s) in sp.dataverse {
            if let Some(d) = self.dataverse.get_mut(&n) {
                d.store.commit(s);
            }
        }
    }

    /// Undoes everything since the savepoint.
    pub(crate) fn rollback_all(&mut self, sp: WorldSavepoint) {
        for (n, s) in sp.fno {
            if let Some(e) = self.fno.get_mut(&n) {
                e.store.rollback(s);
            }
        }
        for (n, s) in sp.dataverse {
            if let Some(d) = self.dataverse.get_mut(&n) {
                d.store.rollback(s);
            }
        }
    }
}

impl World {
    /// Runs `f` as one transaction over every store: when `f` answers `Ok` everything it
    /// wrote commits, dual-written counterparts included; otherwise all of it rolls back.
    /// This is how an OData change set or a deep insert commits as one.
    pub fn atomically<T, E>(&mut self, f: impl FnOnce(&mut World) -> Result<T, E>) -> Result<T, E> {
        let savepoint = self.begin_all();
        let result = f(self);
        match result {
            Ok(_) => self.commit_all(savepoint),
            Err(_) => self.rollback_all(savepoint),
        }
        result
    }

    /// Runs `f` as one transaction, like [`World::atomically`], that also contains a panic: a
    /// panic rolls back everything `f` wrote and answers its message, so one broken request
    /// neither half-writes nor takes the world down with it.
    pub fn contained<T, E>(
        &mut self,
        f: impl FnOnce(&mut World) -> Result<T, E>,
    ) -> Result<Result<T, E>, String> {
        let savepoint = self.begin_all();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self))) {
            Ok(result) => {
                match &result {
                    Ok(_) => self.commit_all(savepoint),
                    Err(_) => self.rollback_all(savepoint),
                }
                Ok(result)
            }
            Err(panic) => {
                self.rollback_all(savepoint);
                self.in_flight = Default::default();
                Err(panic_message(panic.as_ref()))
            }
        }
    }

    /// An F&O `$batch` change set: the records `f` dual-writes count together against the
    /// per-transaction limit, as one F&O transaction's do. `f` runs the change set itself,
    /// [`World::atomically`].
    pub fn fno_change_set<T, E>(
        &mut self,
        f: impl FnOnce(&mut World) -> Result<T, E>,
    ) -> Result<T, E> {
        self.in_flight.records = Some(0);
        let result = f(self);
        self.in_flight.records = None;
        result
    }
}

/// The text a panic was raised with.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a handler panicked".to_string())
}
