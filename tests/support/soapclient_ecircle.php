<?php
// Drives eCircle's SOAP API with PHP's SoapClient loading our ecm.wsdl, as the
// PHP integrations (the Symfony bundle) do, in two phases around the Rust test.
// Prints one JSON object.
//
// usage: php soapclient_ecircle.php first WSDL REALM USER PASSWORD EMAIL GROUP MESSAGE
//        php soapclient_ecircle.php second WSDL REALM USER PASSWORD EMAIL GROUP MESSAGE SESSION EXPIRED
[$script, $phase, $wsdl, $realm, $user, $password, $email, $group, $message] = $argv;
$client = new SoapClient($wsdl, ['trace' => true, 'exceptions' => true, 'cache_wsdl' => WSDL_CACHE_NONE]);

function fault_of(callable $call): ?array
{
    try {
        $call();
    } catch (SoapFault $fault) {
        return [
            'code' => (int) $fault->detail->fault->code,
            'errorMessage' => (string) $fault->detail->fault->errorMessage,
            'faultstring' => $fault->faultstring,
        ];
    }
    return null;
}

$result = [];
if ($phase === 'first') {
    $session = $client->logon(['realm' => $realm, 'user' => $user, 'passwd' => $password])->logonReturn;
    $result['session'] = $session;
    $result['expiring'] = $client->logon(['realm' => $realm, 'user' => $user, 'passwd' => $password])->logonReturn;
    $userXml = "<user><email>$email</email><firstname>Zoe</firstname>"
        . '<namedattr name="customerNo">Z-42</namedattr><namedattr name="tier">gold</namedattr></user>';
    $result['user_id'] = $client->createOrUpdateUserByEmail(['session' => $session, 'userXml' => $userXml, 'sendMessage' => false])->createOrUpdateUserByEmailReturn;
    $result['member_id'] = $client->subscribeMemberByEmail(['session' => $session, 'email' => $email, 'groupId' => $group, 'sendMessage' => false])->subscribeMemberByEmailReturn;
    $result['member'] = $client->lookupMemberByEmail(['session' => $session, 'groupId' => $group, 'email' => $email])->lookupMemberByEmailReturn;
    $client->sendParametrizedSingleMessageToUser([
        'session' => $session,
        'singleMessageId' => $message,
        'userId' => $result['user_id'],
        'names' => ['SUBJECT', 'MSG_BODY'],
        'values' => ['Your code from PHP', 'Code <b>P-5678</b>'],
    ]);
    $result['sent'] = null;
} else {
    [$session, $expired] = array_slice($argv, 9, 2);
    $infos = $client->lookupMessages(['session' => $session, 'lookupParams' => ['messageId' => $message]]);
    $info = $infos->lookupMessagesReturn ?? null;
    $result['messages'] = $info === null ? [] : [[
        'id' => $info->id,
        'type' => $info->type,
        'recipientCount' => $info->recipientCount,
        'actualRecipientCount' => $info->actualRecipientCount,
        'readerCount' => $info->readerCount,
        'openRate' => $info->openRate,
    ]];
    $day = new DateInterval('P1D');
    $now = new DateTimeImmutable('now', new DateTimeZone('UTC'));
    $inRange = $client->lookupMessages(['session' => $session, 'lookupParams' => [
        'messageId' => $message,
        'messageSendDateFrom' => $now->sub($day)->format(DATE_ATOM),
        'messageSendDateTo' => $now->add($day)->format(DATE_ATOM),
        'sortProperty' => 'sendDate',
        'sortAscending' => false,
    ]]);
    $found = $inRange->lookupMessagesReturn ?? null;
    $result['sent_in_range'] = $found === null ? [] : [$found->id];
    $later = $client->lookupMessages(['session' => $session, 'lookupParams' => [
        'messageId' => $message,
        'messageCreationDateFrom' => $now->add($day)->format(DATE_ATOM),
    ]]);
    $result['created_later'] = isset($later->lookupMessagesReturn) ? 1 : 0;
    // null goes out as xsi:nil: those settings stay as they are.
    $client->changeGroupSettings([
        'session' => $session,
        'groupId' => $group,
        'description' => 'Set by PHP',
        'prefix' => null,
        'textFooter' => 'php footer',
        'textHeader' => null,
        'htmlFooter' => null,
        'htmlHeader' => null,
    ]);
    $result['unsubscribed'] = $client->unsubscribeMemberByEmail(['session' => $session, 'email' => $email, 'groupId' => $group, 'sendMessage' => false])->unsubscribeMemberByEmailReturn;
    $result['member_after'] = $client->lookupMemberByEmail(['session' => $session, 'groupId' => $group, 'email' => $email])->lookupMemberByEmailReturn ?? null;
    $client->logout(['session' => $session]);
    $result['logout'] = null;
    $result['after_logout'] = fault_of(fn () => $client->lookupUserByEmail(['session' => $session, 'email' => $email]));
    $result['expired'] = fault_of(fn () => $client->lookupUserByEmail(['session' => $expired, 'email' => $email]));
    $result['wrong_password'] = fault_of(fn () => $client->logon(['realm' => $realm, 'user' => $user, 'passwd' => 'wrong']));
}
echo json_encode($result), "\n";
