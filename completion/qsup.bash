# bash completion for qsup: verbs, options, and VM names asked from the running qsupd.
_qsup_vms() {
    qsup list --names 2>/dev/null
}

_qsup() {
    local cur prev verb i
    COMPREPLY=()
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    local verbs="list top status start stop restart kill pause resume reset reset-failed reload events qmp console logs argv validate help"

    verb=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            --socket|--file|--config|--timeout|--type|--repeat|--wait-event) ((i++)) ;;
            -*) ;;
            *) verb=${COMP_WORDS[i]}; break ;;
        esac
    done

    case $prev in
        --socket|--file|--config)
            COMPREPLY=($(compgen -f -- "$cur"))
            return ;;
    esac

    if [ -z "$verb" ]; then
        COMPREPLY=($(compgen -W "$verbs --help --version" -- "$cur"))
        return
    fi

    if [[ $cur == -* ]]; then
        local opts="--help --socket --json"
        case $verb in
            list) opts="$opts --names" ;;
            top) opts="$opts --interval --sort --iterations" ;;
            start|restart|kill|pause|resume|reset|reset-failed) opts="$opts --all --no-wait" ;;
            stop) opts="$opts --all --no-wait --force --timeout" ;;
            events) opts="$opts --follow --type" ;;
            logs) opts="$opts --follow --serial" ;;
            qmp) opts="$opts --file --repeat --keep-going --events --wait-event --timeout --compact" ;;
            argv) opts="--help --config --shell" ;;
            validate) opts="--help --config" ;;
        esac
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return
    fi

    case $verb in
        status|start|stop|restart|kill|pause|resume|reset|reset-failed|events|console|logs|qmp)
            COMPREPLY=($(compgen -W "$(_qsup_vms)" -- "$cur")) ;;
        argv|validate)
            COMPREPLY=($(compgen -W "$(_qsup_vms)" -f -- "$cur")) ;;
    esac
}
complete -F _qsup qsup
