//! `#[stream_feature_view]` and `#[batch_feature_view]`: parse -> check -> expand.

mod aggregation;
mod args;
mod expand;

use proc_macro2::TokenStream;

use crate::common::ctxt::Ctxt;
use crate::common::item_with_errors;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Stream,
    Batch,
}

impl Kind {
    pub(crate) fn macro_name(self) -> &'static str {
        match self {
            Kind::Stream => "stream_feature_view",
            Kind::Batch => "batch_feature_view",
        }
    }
}

pub(crate) fn expand(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    let func: syn::ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            let err = syn::Error::new(
                proc_macro2::Span::call_site(),
                format!(
                    "`#[{}]` goes on a function `fn name(df: DataFrame) -> PolarsResult<DataFrame>`",
                    kind.macro_name()
                ),
            );
            return item_with_errors(item, err);
        }
    };
    let cx = Ctxt::new();
    let args = args::ViewArgs::parse(&cx, kind, args);
    let view = args::View::from_ast(&cx, kind, args, &func);
    match cx.check() {
        Ok(()) => expand::view(&view),
        Err(e) => expand::dummy(&view, e),
    }
}
