//! The macro behind every fused module: a fixed chain of float modules run in order, named
//! `"0"`, `"1"`, … in the state dict as PyTorch's `nn.Sequential`-based intrinsic modules are.

/// Defines a fused module struct over a chain of named children.
///
/// `fused_chain!(doc, Type, Kind, [field / field_mut: FieldType, ...])` generates the struct,
/// a shared and a mutable accessor per child, `into_parts`, and the `Module` impl (forward in order,
/// backward in reverse, visitors prefixed with the child's position).
macro_rules! fused_chain {
    ($(#[$doc:meta])* $ty:ident, $kind:ident, [$($field:ident / $field_mut:ident : $fty:ty),+ $(,)?]) => {
        $(#[$doc])*
        #[derive(Clone, Debug)]
        pub struct $ty {
            $($field: $fty,)+
        }

        impl $ty {
            $(
                #[doc = concat!("The `", stringify!($field), "` child.")]
                pub fn $field(&self) -> &$fty {
                    &self.$field
                }

                #[doc = concat!("The `", stringify!($field), "` child, mutably.")]
                pub fn $field_mut(&mut self) -> &mut $fty {
                    &mut self.$field
                }
            )+

            /// The children, in order (what the fused module was built from).
            pub fn into_parts(self) -> ($($fty,)+) {
                ($(self.$field,)+)
            }

            fn children(&self) -> Vec<&dyn $crate::module::Module> {
                vec![$(&self.$field as &dyn $crate::module::Module),+]
            }

            fn children_mut(&mut self) -> Vec<&mut dyn $crate::module::Module> {
                vec![$(&mut self.$field as &mut dyn $crate::module::Module),+]
            }
        }

        impl $crate::module::Module for $ty {
            fn kind(&self) -> $crate::module::ModuleKind {
                $crate::module::ModuleKind::$kind
            }

            fn repr_children(&self) -> Vec<(String, $crate::repr::ReprTree)> {
                self.children()
                    .into_iter()
                    .enumerate()
                    .map(|(i, m)| (i.to_string(), $crate::repr::ReprTree::of(m)))
                    .collect()
            }

            fn param_dtype(&self, name: &str) -> Option<$crate::repr::TensorDType> {
                let names: Vec<String> = (0..self.children().len()).map(|i| i.to_string()).collect();
                $crate::repr::child_param_dtype(
                    names.iter().map(String::as_str).zip(self.children()),
                    name,
                )
            }

            fn forward(
                &mut self,
                input: &$crate::value::Value,
            ) -> $crate::error::Result<$crate::value::Value> {
                let mut x = input.clone();
                for m in self.children_mut() {
                    x = m.forward(&x)?;
                }
                Ok(x)
            }

            fn backward(
                &mut self,
                grad_output: &$crate::value::Value,
            ) -> $crate::error::Result<$crate::value::Value> {
                let mut g = grad_output.clone();
                for m in self.children_mut().into_iter().rev() {
                    g = m.backward(&g)?;
                }
                Ok(g)
            }

            fn visit_params(&self, f: &mut dyn FnMut(&str, &$crate::param::Param)) {
                for (i, m) in self.children().into_iter().enumerate() {
                    m.visit_params(&mut |n, p| f(&format!("{i}.{n}"), p));
                }
            }

            fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut $crate::param::Param)) {
                for (i, m) in self.children_mut().into_iter().enumerate() {
                    m.visit_params_mut(&mut |n, p| f(&format!("{i}.{n}"), p));
                }
            }

            fn visit_buffers(&self, f: &mut dyn FnMut(&str, $crate::param::BufferRef<'_>)) {
                for (i, m) in self.children().into_iter().enumerate() {
                    m.visit_buffers(&mut |n, b| f(&format!("{i}.{n}"), b));
                }
            }

            fn visit_buffers_mut(
                &mut self,
                f: &mut dyn FnMut(&str, $crate::param::BufferMut<'_>),
            ) {
                for (i, m) in self.children_mut().into_iter().enumerate() {
                    m.visit_buffers_mut(&mut |n, b| f(&format!("{i}.{n}"), b));
                }
            }

            fn train(&mut self, mode: bool) {
                for m in self.children_mut() {
                    m.train(mode);
                }
            }

            fn is_training(&self) -> bool {
                self.children().first().is_some_and(|m| m.is_training())
            }

            fn half(&mut self) -> $crate::error::Result<()> {
                self.children_mut().into_iter().try_for_each(|m| m.half())
            }

            fn param_bytes(&self) -> usize {
                self.children().into_iter().map(|m| m.param_bytes()).sum()
            }
        }
    };
}

pub(crate) use fused_chain;
