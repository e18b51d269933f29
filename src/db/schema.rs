// The one schema for both backends. Written by hand to match
// migrations/{sqlite,postgres}; the schema-parity test keeps the three in step.

diesel::table! {
    accounts (id) {
        id -> BigInt,
        console_id -> BigInt,
        name -> Text,
        settings -> Text,
        next_list_number -> BigInt,
        next_group_number -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    account_hosts (id) {
        id -> BigInt,
        account_id -> BigInt,
        host -> Text,
    }
}

diesel::table! {
    users (id) {
        id -> BigInt,
        account_id -> BigInt,
        username -> Text,
        password_hash -> Text,
        role -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    credentials (id) {
        id -> BigInt,
        account_id -> BigInt,
        kind -> Text,
        realm -> Text,
        username -> Text,
        secret_hash -> Text,
        created_at -> Timestamp,
        email -> Text,
    }
}

diesel::table! {
    api_sessions (id) {
        id -> BigInt,
        account_id -> BigInt,
        credential_id -> Nullable<BigInt>,
        user_id -> Nullable<BigInt>,
        protocol -> Text,
        token_hash -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        idle_timeout_seconds -> Nullable<BigInt>,
        last_used_at -> Timestamp,
    }
}

diesel::table! {
    lists (id) {
        id -> BigInt,
        account_id -> BigInt,
        number -> BigInt,
        guid -> Text,
        name -> Text,
        sender_name -> Text,
        sender_email -> Text,
        reply_to -> Text,
        double_opt_in -> Bool,
        description -> Text,
        subscribed_count -> BigInt,
        pending_count -> BigInt,
        unsubscribed_count -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        tracking -> Bool,
    }
}

diesel::table! {
    list_groups (id) {
        id -> BigInt,
        account_id -> BigInt,
        list_id -> BigInt,
        number -> BigInt,
        name -> Text,
        notes -> Text,
        member_count -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    fields (id) {
        id -> BigInt,
        account_id -> BigInt,
        number -> Integer,
        name -> Text,
        name_key -> Text,
        default_value -> Text,
    }
}

diesel::table! {
    recipients (id) {
        id -> BigInt,
        account_id -> BigInt,
        email -> Nullable<Text>,
        email_key -> Nullable<Text>,
        mobile_prefix -> Nullable<Text>,
        mobile_number -> Nullable<Text>,
        mobile_key -> Nullable<Text>,
        email_blocklisted -> Bool,
        sms_blocklisted -> Bool,
        bounced -> Bool,
        ext_id -> Nullable<Text>,
        erased_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    recipient_field_values (recipient_id, field_number) {
        account_id -> BigInt,
        recipient_id -> BigInt,
        field_number -> Integer,
        value -> Text,
    }
}

diesel::table! {
    subscriptions (id) {
        id -> BigInt,
        account_id -> BigInt,
        list_id -> BigInt,
        recipient_id -> BigInt,
        status -> Text,
        source -> Text,
        unsubscribe_reason -> Nullable<Integer>,
        confirmation_token_hash -> Nullable<Text>,
        created_at -> Timestamp,
        status_changed_at -> Timestamp,
        confirmed_at -> Nullable<Timestamp>,
        unsubscribed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    group_members (group_id, recipient_id) {
        account_id -> BigInt,
        group_id -> BigInt,
        recipient_id -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    subscription_history (id) {
        id -> BigInt,
        account_id -> BigInt,
        subscription_id -> BigInt,
        list_id -> BigInt,
        recipient_id -> BigInt,
        from_status -> Nullable<Text>,
        to_status -> Text,
        reason -> Nullable<Integer>,
        actor -> Text,
        channel -> Text,
        note -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    server_secrets (name) {
        name -> Text,
        value -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    variables (account_id, name) {
        account_id -> BigInt,
        name -> Text,
        value -> Text,
    }
}

diesel::table! {
    providers (id) {
        id -> BigInt,
        account_id -> BigInt,
        name -> Text,
        channel -> Text,
        kind -> Text,
        config -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    provider_defaults (account_id, channel, category) {
        account_id -> BigInt,
        channel -> Text,
        category -> Text,
        provider_id -> BigInt,
    }
}

diesel::table! {
    messages (id) {
        id -> BigInt,
        account_id -> BigInt,
        channel -> Text,
        dialect -> Text,
        name -> Text,
        subject -> Text,
        html -> Nullable<Text>,
        text -> Nullable<Text>,
        from_name -> Text,
        from_email -> Text,
        reply_to -> Text,
        headers -> Text,
        list_id -> Nullable<BigInt>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        is_template -> Bool,
    }
}

diesel::table! {
    sends (id) {
        id -> BigInt,
        account_id -> BigInt,
        message_id -> BigInt,
        kind -> Text,
        lane -> Integer,
        status -> Text,
        list_id -> Nullable<BigInt>,
        group_ids -> Text,
        field_filter -> Text,
        params -> Text,
        provider_id -> Nullable<BigInt>,
        idempotency_key -> Nullable<Text>,
        scheduled_at -> Nullable<Timestamp>,
        started_at -> Nullable<Timestamp>,
        completed_at -> Nullable<Timestamp>,
        expansion_cursor -> BigInt,
        expanded -> Bool,
        expansion_lease_until -> Nullable<Timestamp>,
        to_send -> BigInt,
        sent -> BigInt,
        deferred -> BigInt,
        failed -> BigInt,
        bounced -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        opens -> BigInt,
        unique_opens -> BigInt,
        clicks -> BigInt,
        unique_clicks -> BigInt,
        machine_opens -> BigInt,
        machine_clicks -> BigInt,
        tracking -> Bool,
    }
}

diesel::table! {
    deliveries (id) {
        id -> BigInt,
        account_id -> BigInt,
        send_id -> BigInt,
        recipient_id -> Nullable<BigInt>,
        channel -> Text,
        address -> Text,
        lane -> Integer,
        state -> Text,
        message_id -> Text,
        params -> Nullable<Text>,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        lease_owner -> Nullable<Text>,
        lease_until -> Nullable<Timestamp>,
        last_reply -> Nullable<Text>,
        created_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
        first_opened_at -> Nullable<Timestamp>,
        first_clicked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    delivery_events (id) {
        id -> BigInt,
        account_id -> BigInt,
        send_id -> BigInt,
        delivery_id -> BigInt,
        recipient_id -> Nullable<BigInt>,
        kind -> Text,
        detail -> Text,
        created_at -> Timestamp,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        url -> Nullable<Text>,
        machine -> Bool,
    }
}

diesel::table! {
    throttles (bucket) {
        bucket -> Text,
        tokens -> Double,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    caller_ips (id) {
        id -> BigInt,
        account_id -> BigInt,
        service -> Text,
        ip -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    system_messages (id) {
        id -> BigInt,
        account_id -> BigInt,
        key -> Text,
        message_id -> BigInt,
    }
}

diesel::table! {
    recipient_activity (recipient_id) {
        recipient_id -> BigInt,
        account_id -> BigInt,
        opens -> BigInt,
        clicks -> BigInt,
        last_opened_at -> Nullable<Timestamp>,
        last_clicked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    bounce_reports (id) {
        id -> BigInt,
        source -> Text,
        outcome -> Text,
        received_at -> Timestamp,
    }
}

diesel::table! {
    list_blocklist (list_id, email_key) {
        account_id -> BigInt,
        list_id -> BigInt,
        email_key -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    list_properties (list_id, name) {
        account_id -> BigInt,
        list_id -> BigInt,
        name -> Text,
        value -> Text,
    }
}

diesel::joinable!(account_hosts -> accounts (account_id));
diesel::table! {
    triggered_sends (id) {
        id -> BigInt,
        account_id -> BigInt,
        customer_key -> Text,
        message_id -> BigInt,
        list_id -> Nullable<BigInt>,
        from_name -> Text,
        from_email -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    send_senders (send_id) {
        send_id -> BigInt,
        account_id -> BigInt,
        from_name -> Text,
        from_email -> Text,
    }
}

diesel::table! {
    file_imports (id) {
        id -> BigInt,
        account_id -> BigInt,
        list_id -> Nullable<BigInt>,
        file_name -> Text,
        status -> Text,
        imported -> BigInt,
        rejected -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    export_batches (id) {
        id -> BigInt,
        account_id -> BigInt,
        kind -> Text,
        status -> Text,
        file_name -> Text,
        created_at -> Timestamp,
    }
}

diesel::joinable!(users -> accounts (account_id));
diesel::joinable!(credentials -> accounts (account_id));
diesel::joinable!(lists -> accounts (account_id));
diesel::joinable!(list_groups -> lists (list_id));
diesel::joinable!(subscriptions -> lists (list_id));
diesel::joinable!(subscriptions -> recipients (recipient_id));
diesel::joinable!(group_members -> list_groups (group_id));
diesel::joinable!(group_members -> recipients (recipient_id));
diesel::joinable!(recipient_field_values -> recipients (recipient_id));
diesel::joinable!(import_processes -> lists (list_id));
diesel::joinable!(sends -> messages (message_id));
diesel::joinable!(deliveries -> sends (send_id));

diesel::table! {
    import_processes (id) {
        id -> BigInt,
        account_id -> BigInt,
        list_id -> BigInt,
        group_numbers -> Text,
        import_type -> Integer,
        as_pending -> Bool,
        confirm_email -> Bool,
        as_opt_out -> Bool,
        force_opt_in -> Bool,
        replace_groups -> Bool,
        confirm_message_id -> Nullable<BigInt>,
        source -> Text,
        actor -> Text,
        channel -> Text,
        state -> Text,
        total_rows -> BigInt,
        staged_rows -> BigInt,
        rows_done -> BigInt,
        new_email -> BigInt,
        new_mobile -> BigInt,
        existing_email -> BigInt,
        existing_mobile -> BigInt,
        optout_email -> BigInt,
        optout_mobile -> BigInt,
        rejected_rows -> BigInt,
        report -> Text,
        confirmation_sent -> Bool,
        lease_owner -> Nullable<Text>,
        lease_until -> Nullable<Timestamp>,
        created_at -> Timestamp,
        started_at -> Nullable<Timestamp>,
        ended_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    import_chunks (process_id, first_row) {
        process_id -> BigInt,
        first_row -> BigInt,
        last_row -> BigInt,
        rows -> Text,
        fields -> Text,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    accounts,
    caller_ips,
    system_messages,
    recipient_activity,
    bounce_reports,
    account_hosts,
    users,
    credentials,
    api_sessions,
    lists,
    list_groups,
    fields,
    recipients,
    recipient_field_values,
    subscriptions,
    group_members,
    subscription_history,
    server_secrets,
    variables,
    providers,
    provider_defaults,
    messages,
    sends,
    deliveries,
    delivery_events,
    throttles,
    import_processes,
    import_chunks,
    list_blocklist,
    list_properties,
    triggered_sends,
    send_senders,
    file_imports,
    export_batches,
    login_failures,
    list_decorations,
    send_lists,
    account_credits,
    send_excluded_groups,
    send_queue_positions,
);

diesel::table! {
    login_failures (id) {
        id -> BigInt,
        account_id -> BigInt,
        protocol -> Text,
        username -> Text,
        failed_at -> Timestamp,
    }
}

diesel::table! {
    list_decorations (list_id) {
        list_id -> BigInt,
        account_id -> BigInt,
        subject_prefix -> Text,
        text_header -> Text,
        text_footer -> Text,
        html_header -> Text,
        html_footer -> Text,
    }
}

diesel::table! {
    send_lists (id) {
        id -> BigInt,
        send_id -> BigInt,
        account_id -> BigInt,
        list_id -> BigInt,
        group_ids -> Text,
        excluded -> Bool,
    }
}

diesel::table! {
    account_credits (account_id, channel) {
        account_id -> BigInt,
        channel -> Text,
        balance -> BigInt,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    send_excluded_groups (send_id, group_id) {
        send_id -> BigInt,
        group_id -> BigInt,
        account_id -> BigInt,
    }
}

diesel::table! {
    send_queue_positions (send_id) {
        send_id -> BigInt,
        account_id -> BigInt,
        position -> BigInt,
    }
}

diesel::table! {
    hit_journal_segments (name) {
        name -> Text,
        applied_bytes -> BigInt,
    }
}
