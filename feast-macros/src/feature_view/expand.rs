//! Code generation for a checked view: the row struct, the view type, the
//! transform wrapper, the const definition and its `inventory` submission.

use heck::ToUpperCamelCase;
use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use super::Kind;
use super::args::View;
use crate::common::{self, attr};

struct Names {
    row: syn::Ident,
    view: syn::Ident,
}

fn names(view: &View<'_>) -> Names {
    let ident = &view.func.sig.ident;
    let camel = ident
        .to_string()
        .trim_start_matches("r#")
        .to_upper_camel_case();
    Names {
        row: format_ident!("{}Row", camel, span = ident.span()),
        view: format_ident!("{}View", camel, span = ident.span()),
    }
}

/// The row struct, the view type and the alias named like the function, which
/// lets other definitions name the view by its function's path.
fn public_types(view: &View<'_>, krate: &TokenStream, names: &Names, dummy: bool) -> TokenStream {
    let func = view.func;
    let vis = &func.vis;
    let fn_ident = &func.sig.ident;
    let Names { row, view: view_ty } = names;
    let name = &view.name;
    let entity_fields = view.entities.iter().map(|e| {
        let (field, path) = (&e.field, &e.path);
        quote!(pub #field: #path)
    });
    // Skip names that clash (already reported), so the struct itself adds no errors.
    let mut taken: Vec<String> = view.entities.iter().map(|e| e.field.to_string()).collect();
    taken.push("event_timestamp".to_owned());
    let unique = view.features.iter().filter(|f| {
        let fresh = !taken.contains(&f.name);
        taken.push(f.name.clone());
        fresh
    });
    let feature_fields = unique.map(|f| {
        let ident = syn::Ident::new(&f.name, f.span);
        let ty = f.rust_type(krate, dummy);
        quote!(pub #ident: ::core::option::Option<#ty>)
    });
    let row_doc =
        format!("One entity's values of the `{name}` feature view, as read from the online store.");
    let view_doc = format!("The `{name}` feature view; `{fn_ident}` names the same type.");
    quote! {
        #[doc = #row_doc]
        #[derive(Debug, Clone, PartialEq)]
        #vis struct #row {
            #(#entity_fields,)*
            /// Event time of the values.
            pub event_timestamp: #krate::chrono::DateTime<#krate::chrono::Utc>,
            #(#feature_fields,)*
        }

        #[doc = #view_doc]
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
        #vis struct #view_ty;

        #[doc = #view_doc]
        #[allow(non_camel_case_types)]
        #vis type #fn_ident = #view_ty;
    }
}

pub(crate) fn view(view: &View<'_>) -> TokenStream {
    let krate = view.args.meta.krate();
    let p = quote!(#krate::__private);
    let func = view.func;
    let fn_ident = &func.sig.ident;
    let names = names(view);
    let types = public_types(view, &krate, &names, false);
    let view_ty = &names.view;
    let row = &names.row;
    let name = &view.name;

    let Some((arg_ty, ret_ty)) = view.signature else {
        return quote!(#func #types);
    };
    let input = quote_spanned!(arg_ty.span()=> <#arg_ty as #p::TransformInput>::from_frame(df));
    let output =
        quote_spanned!(ret_ty.span()=> <#ret_ty as #p::TransformOutput>::into_result(output));

    let (kind, source) = match (view.kind, view.args.source.get()) {
        (Kind::Stream, Some(path)) => (
            quote!(#p::ViewKind::Stream),
            quote_spanned!(path.span()=> #p::stream_source::<#path>()),
        ),
        (Kind::Batch, Some(path)) => (
            quote!(#p::ViewKind::Batch),
            quote_spanned!(path.span()=> #p::batch_source::<#path>()),
        ),
        (_, None) => return quote!(#func #types),
    };
    let entities = view.entities.iter().map(|e| {
        let path = &e.path;
        quote_spanned!(path.span()=> <#path as #p::Entity>::DEF)
    });
    let schema = view.features.iter().map(|f| {
        let (fname, ty) = (&f.name, f.to_runtime(&krate));
        quote!(#p::FieldDef { name: #fname, dtype: #ty })
    });
    let output_schema = view.schema().iter().map(|f| {
        let (fname, ty) = (&f.name, f.ty.to_runtime(&krate));
        quote!(#p::FieldDef { name: #fname, dtype: #ty })
    });
    // Aggregations over source columns: their types and checks, evaluated
    // by the compiler from the source's definition.
    let source_columns = view
        .aggregations
        .iter()
        .map(|a| a.source_column(&krate, &source));
    let aggregations = view.aggregations.iter().map(|a| a.to_runtime(&krate));
    let ttl = view.args.ttl.get().copied().unwrap_or(0);
    let timestamp_field = match view.args.timestamp_field.get() {
        Some(lit) => quote!(::core::option::Option::Some(#lit)),
        None => quote!(::core::option::Option::None),
    };
    let online = view.args.online.get().is_none_or(syn::LitBool::value);
    let offline = view.args.offline.get().is_some_and(syn::LitBool::value);
    let meta = &view.args.meta;
    let description = common::opt_str(meta.description.get(), attr::doc_string(&func.attrs));
    let owner = common::opt_str(meta.owner.get(), None);
    let tags = common::str_pairs(meta.tags.get());
    let loc = common::location(&krate, fn_ident.span());

    // A single entity is the key itself; several are a tuple, in order.
    let paths: Vec<&syn::Path> = view.entities.iter().map(|e| &e.path).collect();
    let single = paths.len() == 1;
    let key_ty = if single {
        quote!(#(#paths)*)
    } else {
        quote!((#(#paths,)*))
    };
    let accessors: Vec<TokenStream> = (0..paths.len())
        .map(|i| {
            if single {
                quote!(key)
            } else {
                let i = syn::Index::from(i);
                quote!(key.#i)
            }
        })
        .collect();
    // Every use of an entity path is the same `<P as Entity>` projection at the
    // path's span, so a wrong path gives rustc one (deduplicated) error.
    let key_pairs = paths.iter().zip(&accessors).map(|(path, a)| {
        let a = if single { quote!(#a) } else { quote!(&#a) };
        quote_spanned! {path.span()=>
            (
                <#path as #p::Entity>::DEF.join_key,
                #p::JoinKey::value(<#path as #p::Entity>::key(#a)),
            )
        }
    });
    let row_keys = view.entities.iter().zip(&accessors).map(|(e, a)| {
        let field = &e.field;
        quote!(#field: #a)
    });
    let row_values = view.features.iter().map(|f| {
        let ident = syn::Ident::new(&f.name, f.span);
        let ty = f.rust_type(&krate, false);
        quote!(#ident: <#ty as #p::FromValue>::from_value(values.next().flatten())?)
    });

    quote! {
        #func
        #(#source_columns)*
        #types

        const _: () = {
            fn __feast_transform(
                df: #p::DataFrame,
            ) -> ::core::result::Result<#p::DataFrame, #p::BoxError> {
                let output: #ret_ty = #fn_ident(#input);
                #output
            }

            const __FEAST_SCHEMA: &[#p::FieldDef] = &[#(#schema),*];
            const __FEAST_OUTPUT: &[#p::FieldDef] = &[#(#output_schema),*];

            static __FEAST_DEF: #p::FeatureViewDef = #p::FeatureViewDef {
                name: #name,
                kind: #kind,
                entities: &[#(#entities),*],
                source: #source,
                schema: __FEAST_SCHEMA,
                output: __FEAST_OUTPUT,
                aggregations: &[#(#aggregations),*],
                ttl_seconds: #ttl,
                timestamp_field: #timestamp_field,
                online: #online,
                offline: #offline,
                description: #description,
                tags: #tags,
                owner: #owner,
                transform: __feast_transform,
                location: #loc,
            };

            impl #p::FeatureView for #view_ty {
                type Row = #row;
                type Key = #key_ty;
                const DEF: &'static #p::FeatureViewDef = &__FEAST_DEF;

                fn serialize_key(key: &Self::Key, out: &mut ::std::vec::Vec<u8>) {
                    #p::serialize_entity_key(out, &[#(#key_pairs),*]);
                }

                fn make_row(
                    key: Self::Key,
                    event_ts_us: i64,
                    values: ::std::vec::Vec<::core::option::Option<#p::Value>>,
                ) -> ::core::result::Result<#row, #p::DecodeError> {
                    let mut values = values.into_iter();
                    ::core::result::Result::Ok(#row {
                        #(#row_keys,)*
                        event_timestamp: #p::timestamp_from_us(event_ts_us),
                        #(#row_values,)*
                    })
                }
            }

            #p::inventory::submit! {
                #p::Definition::FeatureView(&__FEAST_DEF)
            }
        };
    }
}

/// The user's function, the errors, and stand-in types so that code naming the
/// view or its row does not fail a second time.
pub(crate) fn dummy(view: &View<'_>, errors: syn::Error) -> TokenStream {
    let krate = view.args.meta.krate();
    let names = names(view);
    let types = public_types(view, &krate, &names, true);
    let func = view.func;
    let view_ty = &names.view;
    let row = &names.row;
    let errors = errors.to_compile_error();
    let mentions = common::mention(view.args.source.get());
    quote! {
        #func
        #types
        #errors
        #mentions

        impl #krate::__private::FeatureView for #view_ty {
            type Row = #row;
            type Key = ();
            const DEF: &'static #krate::__private::FeatureViewDef = &#krate::__private::INVALID_VIEW;

            fn serialize_key(_: &Self::Key, _: &mut ::std::vec::Vec<u8>) {}

            fn make_row(
                _: Self::Key,
                _: i64,
                _: ::std::vec::Vec<::core::option::Option<#krate::__private::Value>>,
            ) -> ::core::result::Result<#row, #krate::__private::DecodeError> {
                ::core::result::Result::Err(#krate::__private::DecodeError(::std::string::String::from("this view failed to compile")))
            }
        }
    }
}
