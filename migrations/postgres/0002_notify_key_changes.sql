-- Tells other instances when a key they may have cached changes: revoked, rotated, re-dated or
-- deleted, by portcullis or by hand. NOTIFY is delivered when the transaction commits; the
-- payload is the key id. Recording a use (last_used_at) notifies nobody.
CREATE FUNCTION portcullis_api_key_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('portcullis_api_keys', OLD.id);
    RETURN NULL;
END
$$;

CREATE TRIGGER portcullis_api_key_changed
    AFTER UPDATE OF revoked_at, expires_at, replaced_by OR DELETE ON api_keys
    FOR EACH ROW EXECUTE PROCEDURE portcullis_api_key_changed();
