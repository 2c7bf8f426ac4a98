//! How a projection reaches its own view's store.
//!
//! The runner hands every projection one [`ReadModelStore`] per batch. The
//! projection asks it for the store trait of its view, as a trait object
//! type: `store.view::<dyn FindingsStore>()`. A store answers with a
//! [`ViewRef`], which knows how to see it as that trait. So the batch's
//! store needs no list of every view: `palisade-infra` opens the SQL store
//! of whichever view is asked for, and the in-memory store of the unit
//! tests answers for each view it implements.

use std::any::{Any, TypeId};

use crate::StoreError;

/// One batch's access to the read models, as the runner (or a unit test)
/// hands it to a projection.
pub trait ReadModelStore: Send {
    /// The store whose trait object type has the id `store` (the
    /// `TypeId` of `dyn FindingsStore`, …); an error when this batch has
    /// none. Projections call [`view`](trait.ReadModelStore.html#method.view).
    fn store_of(&mut self, store: TypeId) -> Result<ViewRef<'_>, StoreError>;
}

impl dyn ReadModelStore + '_ {
    /// This batch's store of the view whose store trait object type is
    /// `S`: `store.view::<dyn FindingsStore>()`.
    pub fn view<S: ?Sized + 'static>(&mut self) -> Result<&mut S, StoreError> {
        self.store_of(TypeId::of::<S>())?.cast::<S>()
    }
}

/// How [`ViewRef`] sees its target as the store trait `S`.
type Caster<S> = Box<dyn for<'b> Fn(&'b mut (dyn Any + Send)) -> Option<&'b mut S> + Send>;

/// A store handed out by [`ReadModelStore::store_of`]: the store itself,
/// and how to see it as one store trait.
pub struct ViewRef<'a> {
    target: &'a mut (dyn Any + Send),
    /// A `Caster<S>` for the store trait `S` it was made for.
    caster: Box<dyn Any + Send>,
}

impl<'a> ViewRef<'a> {
    /// `target` seen as the store trait `S` through `cast`:
    /// `ViewRef::new(self, |s| s as &mut dyn FindingsStore)`.
    pub fn new<T, S>(target: &'a mut T, cast: fn(&mut T) -> &mut S) -> Self
    where
        T: Any + Send,
        S: ?Sized + 'static,
    {
        let caster: Caster<S> =
            Box::new(move |any: &mut (dyn Any + Send)| any.downcast_mut::<T>().map(cast));
        Self {
            target,
            caster: Box::new(caster),
        }
    }

    fn cast<S: ?Sized + 'static>(self) -> Result<&'a mut S, StoreError> {
        let ViewRef { target, caster } = self;
        let Some(caster) = caster.downcast_ref::<Caster<S>>() else {
            return Err(no_store::<S>());
        };
        caster(target).ok_or_else(no_store::<S>)
    }
}

/// The error of a batch that has no store of type `S`.
pub(crate) fn no_store<S: ?Sized>() -> StoreError {
    StoreError(
        format!(
            "this batch has no {} (each projection writes its own view's store)",
            std::any::type_name::<S>()
        )
        .into(),
    )
}

/// The error of a batch asked for a store by an unknown id.
pub fn no_store_of(store: TypeId) -> StoreError {
    StoreError(format!("this batch has no store of type {store:?}").into())
}
